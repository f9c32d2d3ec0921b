"""The OsmAnd / Traccar Client endpoint (default port 5055) on the device HTTP gateway.

Per request: decode, hand to the pipeline (in this process or through the link to the core), answer only
once the reading is committed. Errors are plain text that says what was wrong; bad input is answered 4xx
and never disturbs other requests.
"""

from __future__ import annotations

from geosentinel.pipeline.runner import Outcome, Submitter
from geosentinel.protocols import osmand
from geosentinel.protocols.base import DecodeError, DecodeResult
from geosentinel.transports.http_gateway import GatewayRequest, Respond


class OsmAndHandler:
    def __init__(self, submitter: Submitter) -> None:
        self._submitter = submitter

    def __call__(self, request: GatewayRequest, respond: Respond) -> None:
        if request.method not in ("GET", "POST"):
            respond(405, f"method {request.method} not allowed: use GET or POST".encode())
            return
        try:
            result = osmand.decode(
                osmand.HttpRequest(request.method, request.query, request.content_type, request.body)
            )
        except DecodeError as exc:
            respond(400, str(exc).encode())
            return
        self._submitter.enqueue(result.messages, lambda outcome: respond(*_answer(outcome, result)))


def _answer(outcome: Outcome, result: DecodeResult) -> tuple[int, bytes]:
    if outcome is Outcome.STORED:
        return 200, result.reply
    if outcome is Outcome.UNKNOWN_DEVICE:
        unique_id = result.messages[0].unique_id if result.messages else "?"
        return result.unknown_device_status, f"unknown device {unique_id}".encode()
    if outcome is Outcome.BUSY:
        return 503, b"busy: retry in a few seconds"
    return 503, b"temporarily unable to store the reading; retry later"
