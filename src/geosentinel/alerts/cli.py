"""``geosentinel alerts|contact|policy``: take alerts and set who they reach, from a terminal."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import msgspec
import typer
from rich.console import Console
from rich.table import Table

from geosentinel.alerts import service_levels, templates
from geosentinel.alerts.lifecycle import Action, Outcome, TransitionError
from geosentinel.alerts.policy import WEARER_CONTACT, Policy, PolicyError, parse_policy
from geosentinel.cli_support import DEFAULT_DB, Db, OrgName, fail, org_id, store
from geosentinel.model import AlertStatus, EventKind, Locale
from geosentinel.store import Scope
from geosentinel.store.alert_care import AlertNotFound
from geosentinel.store.alert_figures import ContactRefused

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
    db: str,
    org: str,
    alert_id: str,
    action: Action,
    by: str,
    outcome: Outcome | None,
    note: str | None,
    at: datetime | None = None,
) -> None:
    s = store(db)
    try:
        alert = s.change_alert(
            Scope(org_id(s, org)), alert_id, action, f"cli:{by}", datetime.now(UTC), outcome, note, at
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


@alerts_app.command("arrive")
def arrive(
    alert_id: str,
    org: OrgName,
    by: Actor,
    at: Annotated[
        str | None, typer.Option(help="When they arrived, ISO 8601 with offset (default: now).")
    ] = None,
    note: Note = None,
    db: Db = DEFAULT_DB,
) -> None:
    """Record that someone reached the wearer (an open alert is thereby taken)."""
    _change(db, org, alert_id, Action.ARRIVE, by, None, note, None if at is None else _aware(at))


@alerts_app.command("report")
def report(
    org: OrgName,
    since: Annotated[
        str | None, typer.Option(help="Start, ISO 8601 (default: 7 days before --until).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="End, excluded, ISO 8601 (default: now).")] = None,
    csv_file: Annotated[Path | None, typer.Option("--csv", help="Also write the figures as CSV.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    db: Db = DEFAULT_DB,
) -> None:
    """Service levels: share of alarms taken within 60 s and 180 s, median and 95th percentile time to
    take them, by kind and local hour, outcomes, and the alerts overdue now."""
    now = datetime.now(UTC)
    end = now if until is None else _aware(until)
    start = end - timedelta(days=7) if since is None else _aware(since)
    s = store(db)
    try:
        scope = Scope(org_id(s, org))
        organisation = s.org(scope.org_id)
        assert organisation is not None
        result = service_levels.report(
            s.alert_facts(scope, start, end), start, end, now, ZoneInfo(organisation.timezone)
        )
    finally:
        s.close()
    if csv_file is not None:
        csv_file.write_text(service_levels.to_csv(result))
    if as_json:
        body = msgspec.to_builtins(result) | {"real_emergency_share": result.real_emergency_share}
        typer.echo(json.dumps(body, indent=2))
        return
    print_report(result)


def print_report(result: service_levels.Report) -> None:
    table = Table(
        "group", "key", "alerts", "answered", "by system", "≤60 s", "≤180 s", "median s", "p95 s", "never",
        title=f"Service levels {result.start:%Y-%m-%d %H:%M}–{result.end:%Y-%m-%d %H:%M} UTC, hours in "
        f"{result.timezone}",
    )  # fmt: skip
    for g in [result.overall, *result.by_kind, *result.by_hour]:
        table.add_row(
            g.group, g.key, str(g.alerts), str(g.answered), str(g.closed_without_person),
            _pct(g.within_s.get(60)), _pct(g.within_s.get(180)), _num(g.median_s), _num(g.p95_s),
            str(g.never_answered),
        )  # fmt: skip
    console = Console()
    console.print(table)
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(result.overall.outcomes.items())) or "none"
    console.print(f"outcomes: {outcomes}; real emergencies: {_pct(result.real_emergency_share)}")
    console.print(f"overdue now (open, not taken after 180 s): {len(result.overdue)}")


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}"


def _aware(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise fail(f"not an ISO 8601 time: {text!r}") from None
    if value.tzinfo is None:
        raise fail(f"give the time with its offset or Z: {text!r}")
    return value


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


@contact_app.command("assign")
def contact_assign(
    org: OrgName,
    wearer: Annotated[str, typer.Option(help="Wearer id.")],
    contact: Annotated[
        list[str], typer.Option(help="Contact id; repeat in order: contact 1 first (wearer:1 in policies).")
    ],
    db: Db = DEFAULT_DB,
) -> None:
    """Set a wearer's own contacts, in order (the charter's contact 1 and contact 2)."""
    s = store(db)
    try:
        if not s.set_wearer_contacts(Scope(org_id(s, org)), wearer, contact):
            raise fail(f"no wearer {wearer} in {org!r}")
    except ContactRefused as exc:
        raise fail(str(exc)) from None
    finally:
        s.close()


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
    _create_policy(db, org, name, policy, default)


def _create_policy(db: str, org: str, name: str, policy: Policy, default: bool) -> None:
    s = store(db)
    try:
        scope = Scope(org_id(s, org))
        named = {c for step in policy.steps for c in step.contacts if not c.startswith(WEARER_CONTACT)}
        unknown = named - {c.id for c in s.contacts(scope)}
        if unknown:
            raise fail(f"unknown contacts: {', '.join(sorted(unknown))}")
        record = s.create_policy(scope.org_id, name, policy, default, datetime.now(UTC))
    finally:
        s.close()
    typer.echo(record.id)


@policy_app.command("templates")
def policy_templates() -> None:
    """The ready-made policies and the contact groups each needs."""
    for t in templates.TEMPLATES.values():
        needs = ", ".join(f"--{n.replace('_', '-')}" for n in t.needs) or "nothing"
        typer.echo(f"{t.name}: {t.summary} (needs {needs})")


@policy_app.command("template")
def policy_template(
    org: OrgName,
    template: Annotated[str, typer.Option(help="fr_charter, care_home or family_only.")],
    name: Annotated[str, typer.Option()],
    emergency: Annotated[list[str] | None, typer.Option(help="fr_charter: emergency contact id.")] = None,
    staff: Annotated[list[str] | None, typer.Option(help="care_home: staff on duty contact id.")] = None,
    night_nurse: Annotated[list[str] | None, typer.Option(help="care_home: night nurse contact id.")] = None,
    gap: Annotated[int, typer.Option(min=15, max=1800, help="fr_charter: seconds between attempts.")] = (
        templates.DEFAULT_ATTEMPT_GAP_S
    ),
    default: Annotated[bool, typer.Option("--default", help="Make it the organisation's default.")] = False,
    db: Db = DEFAULT_DB,
) -> None:
    """Add an escalation policy made from a template; prints its id."""
    try:
        policy = templates.build(template, emergency or [], staff or [], night_nurse or [], gap)
    except templates.TemplateError as exc:
        raise fail(str(exc)) from None
    _create_policy(db, org, name, policy, default)


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
