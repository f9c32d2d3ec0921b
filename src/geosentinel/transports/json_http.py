"""GeoSentinel's JSON v1 payload over HTTP, on the device gateway (default port 5055), for devices and hubs
that post rather than publish: ``POST /geosentinel/v1/<device unique id>/up`` with the same body as an MQTT
up message (``docs/protocols/mqtt.md``), e.g. a motion window around a suspected fall.

Answers: 200 once the reading is committed, 400 with the error for a malformed body, 404 for an unknown
device, 405 for another method, 503 when the service cannot store it now (retry). Every other path goes to
the OsmAnd endpoint, which devices reach at ``/``.
"""

from __future__ import annotations

from urllib.parse import unquote

from geosentinel.pipeline.runner import Outcome, Submitter
from geosentinel.protocols import mqtt
from geosentinel.protocols.base import DecodeError
from geosentinel.transports.http_gateway import GatewayRequest, Handler, Respond
from geosentinel.transports.osmand_http import OsmAndHandler

PATH_PREFIX = "/geosentinel/v1/"
PATH_SUFFIX = "/up"


class JsonUpHandler:
    def __init__(self, submitter: Submitter) -> None:
        self._submitter = submitter

    def __call__(self, request: GatewayRequest, respond: Respond) -> None:
        if request.method != "POST":
            respond(405, f"method {request.method} not allowed: use POST".encode())
            return
        unique_id = unquote(request.path[len(PATH_PREFIX) : -len(PATH_SUFFIX)])
        if not request.path.endswith(PATH_SUFFIX) or not unique_id or "/" in unique_id:
            respond(404, f"no such endpoint: use POST {PATH_PREFIX}<device id>{PATH_SUFFIX}".encode())
            return
        try:
            result = mqtt.decode_payload(unique_id, request.body)
        except DecodeError as exc:
            respond(400, str(exc).encode())
            return
        self._submitter.enqueue(result.messages, lambda outcome: respond(*_answer(outcome, unique_id)))


def _answer(outcome: Outcome, unique_id: str) -> tuple[int, bytes]:
    if outcome is Outcome.STORED:
        return 200, b""
    if outcome is Outcome.UNKNOWN_DEVICE:
        return 404, f"unknown device {unique_id}".encode()
    if outcome is Outcome.BUSY:
        return 503, b"busy: retry in a few seconds"
    return 503, b"temporarily unable to store the reading; retry later"


def device_handler(submitter: Submitter) -> Handler:
    """The device gateway's routes: the JSON v1 endpoint, and OsmAnd for everything else."""
    osmand = OsmAndHandler(submitter)
    json_up = JsonUpHandler(submitter)

    def route(request: GatewayRequest, respond: Respond) -> None:
        (json_up if request.path.startswith(PATH_PREFIX) else osmand)(request, respond)

    return route
