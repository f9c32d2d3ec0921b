"""``geosentinel alerts|contact|policy``: take alerts and set who they reach, from a terminal."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import msgspec
import typer
from rich.console import Console
from rich.table import Table

from geosentinel.alerts.lifecycle import Action, Outcome, TransitionError
from geosentinel.alerts.policy import PolicyError, parse_policy
from geosentinel.cli_support import DEFAULT_DB, Db, OrgName, fail, org_id, store
from geosentinel.model import AlertStatus, EventKind, Locale
from geosentinel.store import Scope
from geosentinel.store.alert_care import AlertNotFound

alerts_app = typer.Typer(help="Alerts: list, take, resolve, see their timeline.", no_args_is_help=True)
contact_app = typer.Typer(help="Contacts alerts may reach (Apprise URLs).", no_args_is_help=True)
policy_app = typer.Typer(help="Escalation policies.", no_args_is_help=True)

Actor = Annotated[str, typer.Option("--by", help="Who does it, for the audit trail (e.g. an e-mail).")]
Note = Annotated[str | None, typer.Option(help="A note for the audit trail.")]


@alerts_app.command("list")
def list_alerts(
    org: OrgName,
    status: Annotated[AlertStatus | None, typer.Option()] = None,
    kind: Annotated[EventKind | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    db: Db = DEFAULT_DB,
) -> None:
    """An organisation's alerts, newest first."""
    s = store(db)
    try:
        alerts = s.alerts(Scope(org_id(s, org)), status, kind, None, limit)
    finally:
        s.close()
    if as_json:
        typer.echo(json.dumps([msgspec.to_builtins(a) for a in alerts], indent=2))
        return
    table = Table("id", "kind", "status", "opened (UTC)", "events", "wearer")
    for a in alerts:
        opened = f"{a.opened_at:%Y-%m-%d %H:%M:%S}"
        table.add_row(a.id, a.kind.value, a.status.value, opened, str(a.event_count), a.wearer_id)
    Console().print(table)


def _change(
    db: str, org: str, alert_id: str, action: Action, by: str, outcome: Outcome | None, note: str | None
) -> None:
    s = store(db)
    try:
        alert = s.change_alert(
            Scope(org_id(s, org)), alert_id, action, f"cli:{by}", datetime.now(UTC), outcome, note
        )
    except AlertNotFound:
        raise fail(f"no alert {alert_id} in {org!r}") from None
    except TransitionError as exc:
        raise fail(str(exc)) from None
    finally:
        s.close()
    typer.echo(f"{alert.id} {alert.status.value}")


@alerts_app.command("ack")
def acknowledge(alert_id: str, org: OrgName, by: Actor, note: Note = None, db: Db = DEFAULT_DB) -> None:
    """Take an alert: its escalation stops."""
    _change(db, org, alert_id, Action.ACKNOWLEDGE, by, None, note)


@alerts_app.command("resolve")
def resolve(
    alert_id: str,
    org: OrgName,
    by: Actor,
    outcome: Annotated[Outcome, typer.Option()],
    note: Note = None,
    db: Db = DEFAULT_DB,
) -> None:
    """Close an alert with its outcome."""
    _change(db, org, alert_id, Action.RESOLVE, by, outcome, note)


@alerts_app.command("reopen")
def reopen(alert_id: str, org: OrgName, by: Actor, note: Note = None, db: Db = DEFAULT_DB) -> None:
    """Open an alert again: its escalation starts again (a running service picks it up within a second)."""
    _change(db, org, alert_id, Action.REOPEN, by, None, note)


@alerts_app.command("timeline")
def timeline(alert_id: str, org: OrgName, db: Db = DEFAULT_DB) -> None:
    """An alert's events, status changes and notifications, in time order (JSON)."""
    s = store(db)
    try:
        found = s.alert_timeline(Scope(org_id(s, org)), alert_id)
    finally:
        s.close()
    if found is None:
        raise fail(f"no alert {alert_id} in {org!r}")
    typer.echo(json.dumps(msgspec.to_builtins(found), indent=2, ensure_ascii=False))


@contact_app.command("add")
def contact_add(
    org: OrgName,
    name: Annotated[str, typer.Option()],
    url: Annotated[list[str], typer.Option(help="An Apprise URL; repeat for fall-backs, tried in order.")],
    locale: Annotated[Locale, typer.Option()] = Locale.FR,
    timezone: Annotated[str, typer.Option(help="IANA zone for times in messages.")] = "Europe/Paris",
    db: Db = DEFAULT_DB,
) -> None:
    """Add a contact; prints its id."""
    s = store(db)
    try:
        contact = s.create_contact(org_id(s, org), name, locale, timezone, url, datetime.now(UTC))
    finally:
        s.close()
    typer.echo(contact.id)


@contact_app.command("list")
def contact_list(org: OrgName, db: Db = DEFAULT_DB) -> None:
    """An organisation's contacts (addresses redacted)."""
    from geosentinel.notify.channels import redact  # Apprise loads only for the commands using it

    s = store(db)
    try:
        contacts = s.contacts(Scope(org_id(s, org)))
    finally:
        s.close()
    for c in contacts:
        typer.echo(
            f"{c.id}  {c.name}  {c.locale.value}  {c.timezone}  {' | '.join(redact(u) for u in c.urls)}"
        )


@policy_app.command("add")
def policy_add(
    org: OrgName,
    name: Annotated[str, typer.Option()],
    file: Annotated[
        Path, typer.Option(exists=True, dir_okay=False, help="The policy as JSON (docs/alerts.md).")
    ],
    default: Annotated[bool, typer.Option("--default", help="Make it the organisation's default.")] = False,
    db: Db = DEFAULT_DB,
) -> None:
    """Add an escalation policy; prints its id."""
    try:
        policy = parse_policy(file.read_bytes())
    except PolicyError as exc:
        raise fail(str(exc)) from None
    s = store(db)
    try:
        scope = Scope(org_id(s, org))
        unknown = {c for step in policy.steps for c in step.contacts} - {c.id for c in s.contacts(scope)}
        if unknown:
            raise fail(f"unknown contacts: {', '.join(sorted(unknown))}")
        record = s.create_policy(scope.org_id, name, policy, default, datetime.now(UTC))
    finally:
        s.close()
    typer.echo(record.id)


@policy_app.command("assign")
def policy_assign(
    org: OrgName,
    wearer: Annotated[str, typer.Option(help="Wearer id.")],
    policy: Annotated[str | None, typer.Option(help="Policy id; omit to go back to the default.")] = None,
    db: Db = DEFAULT_DB,
) -> None:
    """Give a wearer their own escalation policy."""
    s = store(db)
    try:
        if not s.set_wearer_policy(Scope(org_id(s, org)), wearer, policy):
            raise fail(f"no wearer {wearer} or no policy {policy} in {org!r}")
    finally:
        s.close()
