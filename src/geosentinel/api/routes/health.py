"""``/health`` (liveness for load balancers and the demo script) and ``/metrics`` (Prometheus): no data
about anyone, no auth."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from geosentinel import metrics

router = APIRouter(tags=["health"])


@router.get("/health")
async def health(request: Request) -> dict[str, object]:
    pipeline = request.app.state.pipeline
    return {"status": "ok", "queue_depth": pipeline.queue_depth() if pipeline is not None else 0}


@router.get("/metrics", response_class=Response)
async def prometheus_metrics(request: Request) -> Response:
    """Prometheus metrics (text exposition format): ingest, queue depth, detection and commit latency,
    escalation steps, notification tries. Counts only: no tenant, wearer or health data."""
    pipeline = request.app.state.pipeline
    metrics.QUEUE_DEPTH.set(pipeline.queue_depth() if pipeline is not None else 0)
    return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE)
