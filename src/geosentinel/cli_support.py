"""What every ``geosentinel`` command group shares: the database option, errors, the store."""

from __future__ import annotations

from typing import Annotated

import typer

from geosentinel.store import Store, StoreError, open_store

DEFAULT_DB = "sqlite:///var/geosentinel.db"

Db = Annotated[str, typer.Option("--db", envvar="GEOSENTINEL_DB", help="sqlite:///PATH or postgresql://…")]
OrgName = Annotated[str, typer.Option("--org", help="Organisation name.")]


def fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=1)


def store(db: str) -> Store:
    try:
        return open_store(db)
    except StoreError as exc:
        raise fail(str(exc)) from exc


def org_id(store: Store, name: str) -> str:
    org = store.org_by_name(name)
    if org is None:
        raise fail(f"no organisation named {name!r}")
    return org.id
