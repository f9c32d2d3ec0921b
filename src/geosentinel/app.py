"""Composition root: settings → store → pipeline → HTTP servers. No logic lives here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import tempfile
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import uvicorn
import uvloop
from fastapi import Depends, FastAPI
from fastapi_offline import FastAPIOffline

from geosentinel import __version__, dashboard
from geosentinel.alerts.dispatch import RETRY_DELAYS_S, AlertDispatcher, DispatchSettings, warm_channels
from geosentinel.alerts.feed import AlertFeed
from geosentinel.api import errors
from geosentinel.api.deps import refuse_nul
from geosentinel.api.routes import (
    ack,
    alerts,
    audit,
    contacts,
    devices,
    events,
    geofences,
    health,
    organisation,
    overview,
    policies,
    privacy,
    reports,
    session,
    stream,
    tokens,
    wearers,
)
from geosentinel.clock import Clock, SystemClock
from geosentinel.falls.scorer import shipped_scorer
from geosentinel.gctuning import freeze_long_lived
from geosentinel.live import Hub
from geosentinel.maintenance import purge_daily
from geosentinel.notify.ack_links import AckSigner
from geosentinel.pipeline.announcer import Announcer
from geosentinel.pipeline.runner import Pipeline
from geosentinel.pipeline.writer_process import WriterProcess
from geosentinel.protocols import stream_codec
from geosentinel.store import Store, open_store
from geosentinel.transports.http_gateway import start_gateway
from geosentinel.transports.json_http import device_handler
from geosentinel.transports.link import LinkServer
from geosentinel.transports.mqtt import MqttGateway
from geosentinel.transports.tcp_gateway import TcpGateway, TcpLimits
from geosentinel.transports.workers import WorkerPool

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Settings:
    db_url: str
    host: str = "127.0.0.1"
    http_port: int = 8000
    osmand_port: int = 5055
    partitions: int = 4
    gateway_workers: int = 0  # 0: device gateways run in this process
    writer_process: bool = False  # the pipeline's commits in a child process (pipeline/writer_process.py)
    # TCP protocols (0 disables one); served by the gateway workers if any, else in this process.
    watch_port: int = 5093
    gt06_port: int = 5023
    h02_port: int = 5013
    mqtt_url: str | None = None
    tcp_limits: TcpLimits = field(default_factory=TcpLimits)
    # Where acknowledgement links in notifications point (the API as recipients reach it).
    public_url: str | None = None
    # Signs acknowledgement links; None: notifications go out without one (no default secret, ever).
    secret_key: bytes | None = field(default=None, repr=False)
    # Back-off between delivery tries of a notification (seconds); then it is given up.
    retry_delays_s: tuple[float, ...] = RETRY_DELAYS_S

    def tcp_ports(self) -> dict[str, int]:
        ports = {"watch": self.watch_port, "gt06": self.gt06_port, "h02": self.h02_port}
        return {name: port for name, port in ports.items() if port}


def create_api(
    store: Store,
    pipeline: Pipeline | None = None,
    dispatcher: AlertDispatcher | None = None,
    signer: AckSigner | None = None,
    live: Hub | None = None,
    alert_feed: AlertFeed | None = None,
) -> FastAPI:
    # FastAPIOffline serves the /docs page's Swagger UI files itself: no CDN (the machines have no internet).
    app = FastAPIOffline(
        title="GeoSentinel",
        version=__version__,
        description="The platform behind connected safety bracelets.",
    )
    app.state.store = store
    app.state.pipeline = pipeline
    app.state.dispatcher = dispatcher
    app.state.ack_signer = signer
    # The event streams' hub, and how the alert routes announce their changes to it.
    app.state.live = live if live is not None else Hub()
    app.state.alert_feed = alert_feed if alert_feed is not None else AlertFeed(app.state.live, store)
    errors.install(app)
    checked = [Depends(refuse_nul)]
    for module in (alerts, wearers, devices, events, geofences, contacts, policies, reports, audit, session,
                   tokens, organisation, privacy, stream):  # fmt: skip
        app.include_router(module.router, prefix="/api/v1", dependencies=checked)
    app.include_router(contacts.wearer_router, prefix="/api/v1", dependencies=checked)
    app.include_router(ack.router, dependencies=checked)
    app.include_router(health.router)
    app.include_router(overview.router, prefix="/api/v1", dependencies=checked)
    dashboard.install(app)  # the caregivers' page at / (geosentinel/dashboard)
    return app


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to :func:`serve` (it runs several servers)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _server(app: Any, host: str, port: int) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        http="httptools",
        proxy_headers=False,  # devices talk to us directly; trusting X-Forwarded-* is opt-in behind a proxy
    )
    return _Server(config)


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run the service's event loop (uvloop: the ingest path is event-loop bound)."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)


@contextlib.asynccontextmanager
async def tcp_gateways(settings: Settings, pipeline: Pipeline) -> AsyncIterator[dict[str, TcpGateway]]:
    """One TCP listener per stream protocol with a port, in this process (none with gateway workers:
    theirs serve these ports)."""
    gateways: dict[str, TcpGateway] = {}
    try:
        for name, port in settings.tcp_ports().items() if settings.gateway_workers == 0 else ():
            gateway = TcpGateway(stream_codec(name), pipeline, pipeline.clock, settings.tcp_limits)
            await gateway.start(settings.host, port)
            gateways[name] = gateway
        yield gateways
    finally:
        for gateway in gateways.values():
            await gateway.close()


@contextlib.asynccontextmanager
async def mqtt_gateway(settings: Settings, pipeline: Pipeline) -> AsyncIterator[MqttGateway | None]:
    """The MQTT consumer, when a broker is configured."""
    if settings.mqtt_url is None:
        yield None
        return
    gateway = MqttGateway(settings.mqtt_url, pipeline)
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.close()


@contextlib.asynccontextmanager
async def device_gateways(settings: Settings, pipeline: Pipeline) -> AsyncIterator[dict[str, Any]]:
    """The device-facing HTTP listener, in this process; or every device listener (HTTP and TCP) in worker
    processes linked to this one. Yields where commands find the workers' TCP devices (by protocol)."""
    if settings.gateway_workers == 0:
        gateway = await start_gateway(device_handler(pipeline), settings.host, settings.osmand_port)
        try:
            yield {}
        finally:
            gateway.close()
        return
    with tempfile.TemporaryDirectory(prefix="geosentinel-link-") as folder:  # created 0700
        link = LinkServer(pipeline, list(settings.tcp_ports()))
        link_path = str(Path(folder) / "link.sock")
        link_server = await link.start(link_path)
        pool = WorkerPool(settings.gateway_workers, link_path, settings.host, settings.osmand_port,
                          settings.tcp_ports(), settings.tcp_limits)  # fmt: skip
        pool.start()
        try:
            await _wait_for(lambda: link.connected >= settings.gateway_workers, "gateway workers")
            yield dict(link.gateways)
        finally:
            await pool.stop()
            link_server.close()


async def _wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise RuntimeError(f"{what} did not start within {timeout_s:.0f} s")
        await asyncio.sleep(0.05)


def live_feed(store: Store, pipeline: Pipeline) -> tuple[Hub, AlertFeed]:
    """The event streams' hub, told of every commit of the pipeline (and of alert changes by the API)."""
    live = Hub()
    alert_feed = AlertFeed(live, store)
    pipeline.on_committed = Announcer(live, alert_feed).committed
    return live, alert_feed


async def start_pipeline(
    settings: Settings, store: Store, clock: Clock
) -> tuple[Pipeline, WriterProcess | None]:
    """The ingest pipeline, running, and the writer process committing for it (if the settings ask)."""
    fall_scorer = await asyncio.to_thread(shipped_scorer)
    writer: WriterProcess | None = None
    if settings.writer_process:
        writer = WriterProcess(settings.db_url)
        await writer.start()
    pipeline = Pipeline(
        store, clock, partitions=settings.partitions, fall_scorer=fall_scorer,
        commit=writer.ingest if writer is not None else None,
    )  # fmt: skip
    await pipeline.prepare()
    pipeline.start()
    return pipeline, writer


async def serve(settings: Settings, clock: Clock | None = None, ready: asyncio.Event | None = None) -> None:
    """Run the API and the device gateways until cancelled or interrupted."""
    store = await asyncio.to_thread(open_store, settings.db_url)
    await asyncio.to_thread(warm_channels)
    clock = clock or SystemClock()
    pipeline, writer = await start_pipeline(settings, store, clock)
    signer = None if settings.secret_key is None else AckSigner(settings.secret_key)
    if signer is None:
        log.warning("no GEOSENTINEL_SECRET_KEY: notifications go out without acknowledgement links")
    public_url = settings.public_url or f"http://{settings.host}:{settings.http_port}"
    dispatcher = AlertDispatcher(store, clock, DispatchSettings(public_url, signer, settings.retry_delays_s))
    pipeline.on_alerting = dispatcher.wake
    live, alert_feed = live_feed(store, pipeline)
    dispatch_task = asyncio.create_task(dispatcher.run(), name="alert-dispatch")
    purge_task = asyncio.create_task(purge_daily(store, clock), name="retention")
    api_app = create_api(store, pipeline, dispatcher, signer, live, alert_feed)
    api = _server(api_app, settings.host, settings.http_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with (
            device_gateways(settings, pipeline) as remote,
            tcp_gateways(settings, pipeline) as gateways,
            mqtt_gateway(settings, pipeline) as mqtt,
        ):
            # Commands reach TCP devices here or, with gateway workers, through the worker holding them.
            api_app.state.tcp_gateways = gateways or remote
            api_app.state.mqtt = mqtt
            tasks = [asyncio.create_task(api.serve()), asyncio.create_task(stop.wait())]
            await _wait_for(lambda: api.started or any(t.done() for t in tasks), "the API")
            if not api.started:
                raise RuntimeError(f"the API could not listen on {settings.host}:{settings.http_port}")
            tcp = ", ".join(f"{name} on {port}" for name, port in settings.tcp_ports().items())
            log.info("serving API on %s:%d, OsmAnd on %d, %s", settings.host, settings.http_port,
                     settings.osmand_port, tcp)  # fmt: skip
            freeze_long_lived()  # see gctuning.py
            if ready is not None:
                ready.set()
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            live.close()  # open event streams would hold up the API's graceful shutdown
            api.should_exit = True
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        dispatch_task.cancel()
        purge_task.cancel()
        await asyncio.gather(dispatch_task, purge_task, return_exceptions=True)
        await alert_feed.close()
        await dispatcher.close()
        await pipeline.stop()
        if writer is not None:
            await writer.stop()
        await asyncio.to_thread(store.close)
