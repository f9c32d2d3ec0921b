"""``/health``: liveness for load balancers and the demo script (no data, no auth)."""

from __future__ import annotations

from fastapi import APIRouter, Request

router = APIRouter(tags=["health"])


@router.get("/health")
async def health(request: Request) -> dict[str, object]:
    pipeline = request.app.state.pipeline
    return {"status": "ok", "queue_depth": pipeline.queue_depth() if pipeline is not None else 0}
