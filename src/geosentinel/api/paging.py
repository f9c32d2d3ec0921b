"""Paging of the list routes: ``limit`` (1 to 1000, default 100) and ``offset`` (0 to :data:`MAX_OFFSET`),
both applied in the store's SQL, so a page costs the same however long the list is.

Routes take them as ``limit: Limit = DEFAULT_LIMIT, offset: Offset = 0``.
"""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import Query

from geosentinel.api.schemas import MAX_OFFSET

DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 1000

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="at most this many items")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="skip this many items first")]
