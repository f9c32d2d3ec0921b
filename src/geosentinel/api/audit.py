"""Every read of positions or health data leaves an audit entry (who, what, about whom, when) before the
answer goes out: a read that cannot be audited fails instead of leaving no trace."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import UTC, datetime

from geosentinel.api.deps import Caller
from geosentinel.store import Store


async def audit_read(
    store: Store,
    caller: Caller,
    resource: str,
    wearer_ids: Iterable[str | None],
    records: int,
    **query: object,
) -> None:
    await asyncio.to_thread(
        store.record_read, caller.scope, f"user:{caller.user.id}", resource, list(wearer_ids), records, query,
        datetime.now(UTC),
    )  # fmt: skip
