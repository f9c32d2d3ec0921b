"""Composition root: settings → store → pipeline → HTTP servers. No logic lives here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn
from fastapi import FastAPI

from geosentinel import __version__
from geosentinel.api import errors
from geosentinel.api.routes import alerts, devices, events, health, wearers
from geosentinel.clock import Clock, SystemClock
from geosentinel.pipeline.runner import Pipeline
from geosentinel.store import Store, open_store
from geosentinel.transports.osmand_http import OsmAndApp

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Settings:
    db_url: str
    host: str = "127.0.0.1"
    http_port: int = 8000
    osmand_port: int = 5055
    partitions: int = 4


def create_api(store: Store, pipeline: Pipeline | None = None) -> FastAPI:
    app = FastAPI(
        title="GeoSentinel",
        version=__version__,
        description="The platform behind connected safety bracelets.",
    )
    app.state.store = store
    app.state.pipeline = pipeline
    errors.install(app)
    for module in (alerts, wearers, devices, events):
        app.include_router(module.router, prefix="/api/v1")
    app.include_router(health.router)
    return app


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to :func:`serve` (it runs several servers)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _server(app: Any, host: str, port: int) -> uvicorn.Server:
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False, lifespan="off", http="httptools"
    )
    return _Server(config)


async def serve(settings: Settings, clock: Clock | None = None, ready: asyncio.Event | None = None) -> None:
    """Run the API and the device gateways until cancelled or interrupted."""
    store = await asyncio.to_thread(open_store, settings.db_url)
    pipeline = Pipeline(store, clock or SystemClock(), partitions=settings.partitions)
    pipeline.start()
    servers = [
        _server(create_api(store, pipeline), settings.host, settings.http_port),
        _server(OsmAndApp(pipeline), settings.host, settings.osmand_port),
    ]
    stop = asyncio.Event()
    tasks: list[asyncio.Task[Any]] = [asyncio.create_task(s.serve()) for s in servers]
    tasks.append(asyncio.create_task(stop.wait()))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        while not all(s.started for s in servers) and not stop.is_set():
            if any(t.done() for t in tasks):
                raise RuntimeError("a server failed to start (port in use?)")
            await asyncio.sleep(0.02)
        log.info("serving API on %s:%d, OsmAnd on %s:%d", settings.host, settings.http_port,
                 settings.host, settings.osmand_port)  # fmt: skip
        if ready is not None:
            ready.set()
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for s in servers:
            s.should_exit = True
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await pipeline.stop()
        await asyncio.to_thread(store.close)
