"""Docs as tests: every API route and every CLI command is documented."""

from __future__ import annotations

from pathlib import Path

import typer.main

from geosentinel.app import create_api
from geosentinel.cli import app as cli_app

DOCS = Path(__file__).parent.parent / "docs"


class _NoStore:
    """create_api only keeps a reference to the store; listing routes never touches it."""


def test_every_api_route_is_documented() -> None:
    api_doc = (DOCS / "api.md").read_text()
    paths = create_api(_NoStore()).openapi()["paths"]  # type: ignore[arg-type]
    routes = [f"{method.upper()} {path}" for path, methods in paths.items() for method in methods]
    assert "GET /api/v1/alerts" in routes
    missing = [r for r in routes if f"`{r}" not in api_doc]
    assert missing == [], f"undocumented routes: {missing}"


def _commands(group: typer.Typer, prefix: str = "geosentinel") -> list[str]:
    click_group = typer.main.get_command(group)
    names: list[str] = []
    for name, command in click_group.commands.items():  # type: ignore[attr-defined]
        if command.hidden:
            continue
        if hasattr(command, "commands"):
            names += [f"{prefix} {name} {sub}" for sub, c in command.commands.items() if not c.hidden]
        else:
            names.append(f"{prefix} {name}")
    return names


def test_every_cli_command_is_documented() -> None:
    cli_doc = (DOCS / "cli.md").read_text()
    commands = _commands(cli_app)
    assert "geosentinel serve" in commands and "geosentinel org create" in commands
    missing = [c for c in commands if f"`{c}" not in cli_doc]
    assert missing == [], f"undocumented commands: {missing}"


def test_readme_shows_the_commands_first() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    first_block = readme.split("```")[1]
    for command in ("make install", "make demo", "make test", "make bench"):
        assert command in first_block
