"""Device-gateway worker processes: HTTP parsing and decoding on every core, one pipeline in the core.

``serve --gateway-workers N`` starts N processes that share the device port (SO_REUSEPORT) and forward
decoded messages over the link (:mod:`.link`). A worker that dies is restarted; when the core dies, the
workers see the link close and exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
import sys

from geosentinel.gctuning import freeze_long_lived
from geosentinel.transports.http_gateway import start_gateway
from geosentinel.transports.json_http import device_handler
from geosentinel.transports.link import LinkClient

log = logging.getLogger(__name__)


async def run_worker(link_path: str, host: str, osmand_port: int) -> None:
    """The body of one worker process."""
    # Bind first (a worker that cannot listen must fail before the core counts it as ready), connect the
    # link, and only then accept devices.
    loop = asyncio.get_running_loop()
    sockets = await loop.create_server(
        asyncio.Protocol, host, osmand_port, reuse_port=True, start_serving=False
    )
    sockets.close()
    link = await LinkClient.connect(link_path)
    server = await start_gateway(device_handler(link), host, osmand_port, reuse_port=True)
    # Like the core: what the worker imported (it loads the whole app's modules) stays out of every
    # collection. Workers did without it until the app's imports grew (Babel, numpy, Apprise) and their
    # full collections cost ingest ~15 % (bench/NOTES.md).
    freeze_long_lived()
    try:
        await link.closed.wait()
    finally:
        server.close()


class WorkerPool:
    """Starts, watches and stops the worker processes."""

    def __init__(self, count: int, link_path: str, host: str, osmand_port: int) -> None:
        self._args = [sys.executable, "-m", "geosentinel", "gateway-worker", "--link", link_path,
                      "--host", host, "--osmand-port", str(osmand_port)]  # fmt: skip
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
