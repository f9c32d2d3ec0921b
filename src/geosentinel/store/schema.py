"""Table definitions shared by both backends; the migrations create exactly these.

Times are stored as integer microseconds since the Unix epoch (UTC) in ``*_us`` columns: the same type
and meaning in SQLite and PostgreSQL, sortable, and cheap on the ingest hot path (no per-value
conversion). Entity ids are UUID strings so that stores of different regions never collide.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

metadata = sa.MetaData()

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_us(value: datetime) -> int:
    """A tz-aware datetime as integer microseconds since the epoch."""
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(value: int) -> datetime:
    return datetime.fromtimestamp(value // 1_000_000, UTC).replace(microsecond=value % 1_000_000)


def _id(name: str = "id") -> sa.Column[str]:
    return sa.Column(name, sa.String(36), primary_key=True)


organisations = sa.Table(
    "organisations",
    metadata,
    _id(),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("region", sa.String(8), nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("locale", sa.String(8), nullable=False),
    sa.Column("created_us", sa.BigInteger, nullable=False),
    # How long readings, events and resolved alerts are kept (store/retention.py purges what is older).
    sa.Column("retention_days", sa.Integer, nullable=False, server_default="365"),
)

users = sa.Table(
    "users",
    metadata,
    _id(),
    sa.Column("org_id", sa.String(36), sa.ForeignKey("organisations.id"), nullable=False, index=True),
    sa.Column("email", sa.String(320), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("created_us", sa.BigInteger, nullable=False),
    # Consecutive failed logins, and until when the account is locked after too many (api/routes/session.py).
    sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"),
    sa.Column("locked_until_us", sa.BigInteger, nullable=True),
    # When an admin removed the account (store/users.py): it can no longer log in; NULL: active.
    sa.Column("disabled_us", sa.BigInteger, nullable=True),
)

# Dashboard sessions: the cookie's value is never stored, only its SHA-256 (like tokens). The CSRF token
# is not a credential on its own (it is useless without the cookie), so it is kept to hand back.
sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("session_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_us", sa.BigInteger, nullable=False),
    sa.Column("expires_us", sa.BigInteger, nullable=False),
    sa.Column("revoked_us", sa.BigInteger, nullable=True),
)

tokens = sa.Table(
    "tokens",
    metadata,
    _id(),
    sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("label", sa.String(200), nullable=False),
    sa.Column("created_us", sa.BigInteger, nullable=False),
    sa.Column("revoked_us", sa.BigInteger, nullable=True),
    # "read" (GET only) or "read,write"; tokens made before scopes existed could do everything.
    sa.Column("scopes", sa.String(32), nullable=False, server_default="read,write"),
)

wearers = sa.Table(
    "wearers",
    metadata,
    _id(),
    sa.Column("org_id", sa.String(36), sa.ForeignKey("organisations.id"), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("created_us", sa.BigInteger, nullable=False),
    # JSON overrides of the detection thresholds (see detect.base.WearerProfile); NULL: the defaults.
    sa.Column("settings", sa.Text, nullable=True),
    # The wearer's own escalation policy; NULL: the organisation's default.
    sa.Column("escalation_policy_id", sa.String(36), nullable=True),
)

# Family members see only the wearers linked to them.
user_wearers = sa.Table(
    "user_wearers",
    metadata,
    sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("wearer_id", sa.String(36), sa.ForeignKey("wearers.id"), primary_key=True),
)

devices = sa.Table(
    "devices",
    metadata,
    _id(),
    sa.Column("org_id", sa.String(36), sa.ForeignKey("organisations.id"), nullable=False, index=True),
    sa.Column("wearer_id", sa.String(36), sa.ForeignKey("wearers.id"), nullable=True, index=True),
    sa.Column("unique_id", sa.String(64), nullable=False, unique=True),
    sa.Column("protocol", sa.String(32), nullable=False),
    sa.Column("model", sa.String(64), nullable=True),
    sa.Column("timezone", sa.String(64), nullable=True),
    sa.Column("created_us", sa.BigInteger, nullable=False),
    # How often the device reports when all is well; NULL: learned from its own rhythm (offline detection).
    sa.Column("expected_interval_s", sa.Float, nullable=True),
)

# Safe zones (alert on exit) and danger zones (alert on entry), per wearer or for a whole organisation.
geofences = sa.Table(
    "geofences",
    metadata,
    _id(),
    sa.Column("org_id", sa.String(36), sa.ForeignKey("organisations.id"), nullable=False, index=True),
    sa.Column("wearer_id", sa.String(36), sa.ForeignKey("wearers.id"), nullable=True, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("geometry", sa.Text, nullable=False),  # GeoJSON geometry, WGS-84
    sa.Column("radius_m", sa.Float, nullable=True),  # circles: a Point and its radius
    sa.Column("width_m", sa.Float, nullable=True),  # corridors: a LineString and its full width
    sa.Column("schedule", sa.Text, nullable=True),  # JSON; NULL: always active
    sa.Column("created_us", sa.BigInteger, nullable=False),
    sa.Column("updated_us", sa.BigInteger, nullable=False),
)

# Per-device pipeline state (last accepted fix for the bad-fix filter, detector state as JSON).
device_state = sa.Table(
    "device_state",
    metadata,
    sa.Column("device_id", sa.String(36), sa.ForeignKey("devices.id"), primary_key=True),
    sa.Column("last_seen_us", sa.BigInteger, nullable=False),
    sa.Column("fix_time_us", sa.BigInteger, nullable=True),
    sa.Column("fix_latitude", sa.Float, nullable=True),
    sa.Column("fix_longitude", sa.Float, nullable=True),
    sa.Column("battery_pct", sa.Float, nullable=True),
    sa.Column("detectors", sa.Text, nullable=False, server_default="{}"),
)

readings = sa.Table(
    "readings",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("org_id", sa.String(36), nullable=False),
    sa.Column("device_id", sa.String(36), nullable=False),
    sa.Column("wearer_id", sa.String(36), nullable=True),
    sa.Column("time_us", sa.BigInteger, nullable=False),
    sa.Column("received_us", sa.BigInteger, nullable=False),
    sa.Column("latitude", sa.Float, nullable=True),
    sa.Column("longitude", sa.Float, nullable=True),
    sa.Column("valid", sa.Boolean, nullable=True),
    sa.Column("rejected", sa.String(32), nullable=True),
    sa.Column("speed_kmh", sa.Float, nullable=True),
    sa.Column("course_deg", sa.Float, nullable=True),
    sa.Column("altitude_m", sa.Float, nullable=True),
    sa.Column("accuracy_m", sa.Float, nullable=True),
    sa.Column("hdop", sa.Float, nullable=True),
    sa.Column("satellites", sa.Integer, nullable=True),
    sa.Column("battery_pct", sa.Float, nullable=True),
    sa.Column("charging", sa.Boolean, nullable=True),
    sa.Column("steps", sa.Integer, nullable=True),
    sa.Column("heart_rate_bpm", sa.Float, nullable=True),
    sa.Column("spo2_pct", sa.Float, nullable=True),
    sa.Column("temperature_c", sa.Float, nullable=True),
    sa.Column("alarms", sa.String(200), nullable=True),
    sa.Column("extras", sa.Text, nullable=True),
    # The only index: readings are read by wearer and time (positions, the wearer's day, exports). Each
    # index costs the writer a page per device and commit (see migration 0003).
    sa.Index("ix_readings_wearer_time", "wearer_id", "time_us"),
)

ACTIVE_ALERT = "status IN ('open', 'acknowledged')"

alerts = sa.Table(
    "alerts",
    metadata,
    _id(),
    sa.Column("org_id", sa.String(36), nullable=False),
    sa.Column("wearer_id", sa.String(36), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("opened_at_us", sa.BigInteger, nullable=False),
    sa.Column("last_event_at_us", sa.BigInteger, nullable=False),
    sa.Column("event_count", sa.Integer, nullable=False),
    sa.Column("latitude", sa.Float, nullable=True),
    sa.Column("longitude", sa.Float, nullable=True),
    sa.Column("acknowledged_at_us", sa.BigInteger, nullable=True),
    sa.Column("acknowledged_by", sa.String(36), nullable=True),
    sa.Column("resolved_at_us", sa.BigInteger, nullable=True),
    sa.Column("resolved_by", sa.String(36), nullable=True),
    sa.Column("outcome", sa.String(32), nullable=True),
    sa.Column("note", sa.Text, nullable=True),
    sa.Index("ix_alerts_org_status_opened", "org_id", "status", "opened_at_us"),
    # One active alert per wearer and kind: repeats attach to it (enforced by the database, so it holds
    # however the pipeline is partitioned).
    sa.Index(
        "ux_alerts_active_wearer_kind",
        "wearer_id",
        "kind",
        unique=True,
        sqlite_where=sa.text(ACTIVE_ALERT),
        postgresql_where=sa.text(ACTIVE_ALERT),
    ),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("org_id", sa.String(36), nullable=False),
    sa.Column("wearer_id", sa.String(36), nullable=True),
    sa.Column("device_id", sa.String(36), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("time_us", sa.BigInteger, nullable=False),
    sa.Column("received_us", sa.BigInteger, nullable=False),
    sa.Column("latitude", sa.Float, nullable=True),
    sa.Column("longitude", sa.Float, nullable=True),
    sa.Column("alert_id", sa.String(36), nullable=True, index=True),
    sa.Column("details", sa.Text, nullable=True),
    sa.Index("ix_events_org_time", "org_id", "time_us"),
    sa.Index("ix_events_wearer_time", "wearer_id", "time_us"),
)

# -- taking alerts: who is told, when, and what happened ---------------------------------------------------

# People and lines an alert may reach. ``urls``: JSON list of Apprise URLs, tried in order (fall-back); they
# hold credentials, so the API only ever shows them redacted.
contacts = sa.Table(
    "contacts",
    metadata,
    _id(),
    sa.Column("org_id", sa.String(36), sa.ForeignKey("organisations.id"), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("locale", sa.String(8), nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("urls", sa.Text, nullable=False),
    sa.Column("created_us", sa.BigInteger, nullable=False),
)

# An organisation's escalation policies (alerts.policy.Policy as JSON); the default one applies to wearers
# without their own (wearers.escalation_policy_id).
escalation_policies = sa.Table(
    "escalation_policies",
    metadata,
    _id(),
    sa.Column("org_id", sa.String(36), sa.ForeignKey("organisations.id"), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("document", sa.Text, nullable=False),
    sa.Column("is_default", sa.Boolean, nullable=False),
    sa.Column("created_us", sa.BigInteger, nullable=False),
    sa.Column("updated_us", sa.BigInteger, nullable=False),
)

# Each alert's escalation: the next step to send and when (NULL: over). Written with the alert in the same
# transaction, advanced with the notifications it creates: a restart resumes it exactly.
escalations = sa.Table(
    "escalations",
    metadata,
    sa.Column("alert_id", sa.String(36), sa.ForeignKey("alerts.id"), primary_key=True),
    sa.Column("org_id", sa.String(36), nullable=False),
    sa.Column("round", sa.Integer, nullable=False),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("due_us", sa.BigInteger, nullable=True),
    sa.Index("ix_escalations_due", "due_us"),
)

# The outbox: one row per (alert, round, step, contact), created once (the idempotency key is unique), then
# delivered at least once with retries and back-off; ``attempts_log`` keeps every try and why it failed.
notifications = sa.Table(
    "notifications",
    metadata,
    _id(),
    sa.Column("org_id", sa.String(36), nullable=False),
    sa.Column("alert_id", sa.String(36), sa.ForeignKey("alerts.id"), nullable=False, index=True),
    sa.Column("contact_id", sa.String(36), nullable=False),
    sa.Column("round", sa.Integer, nullable=False),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("idempotency_key", sa.String(200), nullable=False, unique=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("tries", sa.Integer, nullable=False),
    sa.Column("next_try_us", sa.BigInteger, nullable=True),
    sa.Column("created_us", sa.BigInteger, nullable=False),
    sa.Column("handed_us", sa.BigInteger, nullable=True),  # first handed to a channel
    sa.Column("delivered_us", sa.BigInteger, nullable=True),
    sa.Column("channel", sa.Integer, nullable=True),  # which of the contact's URLs took it
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("attempts_log", sa.Text, nullable=True),
    sa.Index("ix_notifications_due", "status", "next_try_us"),
)

# The audit trail of every alert's status changes: who (user:<id>, contact:<id> through an
# acknowledgement link, or system), when, and their note.
alert_transitions = sa.Table(
    "alert_transitions",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("alert_id", sa.String(36), sa.ForeignKey("alerts.id"), nullable=False, index=True),
    sa.Column("org_id", sa.String(36), nullable=False),
    sa.Column("at_us", sa.BigInteger, nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("from_status", sa.String(16), nullable=True),
    sa.Column("to_status", sa.String(16), nullable=False),
    sa.Column("actor", sa.String(80), nullable=False),
    sa.Column("outcome", sa.String(32), nullable=True),
    sa.Column("note", sa.Text, nullable=True),
)

# Each wearer's own contacts, in order (the French charter's contact 1 and contact 2; policies name them
# ``wearer:1``, ``wearer:2``). A contact that is nobody's own is the organisation's staff.
wearer_contacts = sa.Table(
    "wearer_contacts",
    metadata,
    sa.Column("wearer_id", sa.String(36), sa.ForeignKey("wearers.id"), primary_key=True),
    sa.Column("rank", sa.Integer, primary_key=True),
    sa.Column("contact_id", sa.String(36), sa.ForeignKey("contacts.id"), nullable=False, index=True),
    sa.Column("org_id", sa.String(36), nullable=False),
)

# When each person first saw an alert (the dashboard, the API): "shown to a caregiver" in the service
# figures (alerts.service_levels). One row per alert and viewer.
alert_views = sa.Table(
    "alert_views",
    metadata,
    sa.Column("alert_id", sa.String(36), sa.ForeignKey("alerts.id"), primary_key=True),
    sa.Column("actor", sa.String(80), primary_key=True),
    sa.Column("org_id", sa.String(36), nullable=False),
    sa.Column("at_us", sa.BigInteger, nullable=False),
)

# Who saw what: one row per API read of positions or health data (alerts, events, timelines, reports),
# with the wearers the answer was about. Read through /api/v1/audit by the organisation's admins.
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("org_id", sa.String(36), nullable=False),
    sa.Column("at_us", sa.BigInteger, nullable=False),
    sa.Column("actor", sa.String(80), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),  # read (later: export, erase)
    sa.Column("resource", sa.String(64), nullable=False),  # e.g. positions, alerts, alert_timeline
    sa.Column("wearer_ids", sa.Text, nullable=False),  # JSON list: whose data the answer held
    sa.Column("records", sa.Integer, nullable=False),  # how many records it held
    sa.Column("query", sa.Text, nullable=True),  # JSON: the request's filters
    sa.Index("ix_audit_log_org_at", "org_id", "at_us"),
)
