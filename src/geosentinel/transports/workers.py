"""Device-gateway worker processes: device connections and decoding on every core, one pipeline in the core.

``serve --gateway-workers N`` starts N processes that share the device ports (SO_REUSEPORT): the HTTP
gateway (OsmAnd, JSON) and the TCP gateways (watch, GT06, H02). They forward decoded messages over the
link (:mod:`.link`), mirror which TCP devices they hold to the core (for commands) and write the commands
the core sends them. A worker that dies is restarted (its devices reconnect); when the core dies, the
workers see the link close and exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import subprocess
import sys
from collections.abc import Mapping

from geosentinel.clock import SystemClock
from geosentinel.gctuning import freeze_long_lived
from geosentinel.protocols import stream_codec
from geosentinel.transports.http_gateway import start_gateway
from geosentinel.transports.json_http import device_handler
from geosentinel.transports.link import LinkClient
from geosentinel.transports.tcp_gateway import TcpGateway, TcpLimits

log = logging.getLogger(__name__)


async def run_worker(
    link_path: str,
    host: str,
    osmand_port: int,
    tcp_ports: Mapping[str, int] | None = None,
    tcp_limits: TcpLimits | None = None,
) -> None:
    """The body of one worker process."""
    # Bind first (a worker that cannot listen must fail before the core counts it as ready), connect the
    # link, and only then accept devices.
    loop = asyncio.get_running_loop()
    tcp_ports = tcp_ports or {}
    for port in (osmand_port, *tcp_ports.values()):
        probe = await loop.create_server(asyncio.Protocol, host, port, reuse_port=True, start_serving=False)
        probe.close()
    link = await LinkClient.connect(link_path)
    server = await start_gateway(device_handler(link), host, osmand_port, reuse_port=True)
    gateways = {name: TcpGateway(stream_codec(name), link, SystemClock(), tcp_limits) for name in tcp_ports}
    for name, gateway in gateways.items():
        gateway.on_session = functools.partial(link.session_changed, name)
        await gateway.start(host, tcp_ports[name], reuse_port=True)
    link.on_send = functools.partial(_send_command, gateways)
    link.ready()
    # Like the core: what the worker imported (it loads the whole app's modules) stays out of every
    # collection. Workers did without it until the app's imports grew (Babel, numpy, Apprise) and their
    # full collections cost ingest ~15 % (bench/NOTES.md).
    freeze_long_lived()
    try:
        await link.closed.wait()
    finally:
        server.close()
        for gateway in gateways.values():
            await gateway.close()


def _send_command(gateways: Mapping[str, TcpGateway], protocol: str, unique_id: str, data: bytes) -> None:
    gateway = gateways.get(protocol)
    connection = gateway.connection_of(unique_id) if gateway is not None else None
    if connection is None or not connection.send(data):
        # The core saw it connected a moment ago; the API already answered "sent", as it would have had
        # the connection closed right after the write in the core.
        log.warning("command for %s %s: no longer connected to this worker", protocol, unique_id)


class WorkerPool:
    """Starts, watches and stops the worker processes."""

    def __init__(
        self,
        count: int,
        link_path: str,
        host: str,
        osmand_port: int,
        tcp_ports: Mapping[str, int] | None = None,
        tcp_limits: TcpLimits | None = None,
    ) -> None:
        self._args = [sys.executable, "-m", "geosentinel", "gateway-worker", "--link", link_path,
                      "--host", host, "--osmand-port", str(osmand_port)]  # fmt: skip
        for name, port in (tcp_ports or {}).items():
            self._args += [f"--{name}-port", str(port)]
        if tcp_limits is not None:
            # Per worker: SO_REUSEPORT spreads one address's connections over the workers.
            self._args += ["--max-connections-per-address", str(tcp_limits.max_connections_per_address)]
        self._processes: list[subprocess.Popen[bytes]] = []
        self._count = count
        self._watch: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._processes = [self._spawn() for _ in range(self._count)]
        self._watch = asyncio.create_task(self._restart_dead())

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self._args)  # noqa: S603 (our own interpreter and module)

    async def _restart_dead(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            for index, process in enumerate(self._processes):
                if process.poll() is not None:
                    log.warning("gateway worker exited with %s; restarting it", process.returncode)
                    self._processes[index] = self._spawn()

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        for process in self._processes:
            process.terminate()
        for process in self._processes:
            try:
                await asyncio.to_thread(process.wait, 10)
            except subprocess.TimeoutExpired:
                process.kill()
