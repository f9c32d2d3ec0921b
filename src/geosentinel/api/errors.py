"""Every error is ``{"error": {"code", "message"}}``: a stable code for programs, and a message for people in
their language (fr, en, zh; from the request's ``Accept-Language``, English otherwise).

Routes raise :class:`ApiError` with an English message marked by :func:`N_` (the catalogs' msgid, kept in
``geosentinel/locales``) and its values apart (``ApiError(404, N_("no alert {alert_id}"), alert_id=…)``),
so that the message is translated first and filled in after. A reason that comes from elsewhere (a
validation library, a pure module) is passed as a value: the sentence around it is translated, the
technical reason stays as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from geosentinel.i18n import BABEL_LOCALES, DEFAULT_LOCALE, normalise_locale, translator

CODES: Final = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    422: "unprocessable",
    429: "too_many_requests",
}


def N_(message: str) -> str:
    """Marks an English message as a msgid of the catalogs; translated when the error is answered."""
    return message


# Starlette's own messages (an unknown route, a wrong method), translated like ours.
FRAMEWORK_MESSAGES: Final = (N_("Not Found"), N_("Method Not Allowed"))


class ApiError(HTTPException):
    """An error whose message is a msgid with ``{name}`` placeholders filled from ``values``."""

    def __init__(
        self, status_code: int, message: str, headers: Mapping[str, str] | None = None, **values: object
    ) -> None:
        super().__init__(status_code, message, dict(headers) if headers else None)
        self.values = values


def request_locale(request: Request) -> str:
    """The best of our languages in the request's ``Accept-Language`` (English when none fits)."""
    header = request.headers.get("accept-language", "")
    choices: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        language = tag.strip().replace("-", "_").split("_", 1)[0].lower()
        if language in BABEL_LOCALES and quality > 0:
            choices.append((-quality, position, language))
    return min(choices)[2] if choices else DEFAULT_LOCALE


def localise(message: str, locale: str, values: Mapping[str, object] | None = None) -> str:
    text = translator(normalise_locale(locale)).gettext(message)
    if not values:
        return text
    try:
        return text.format(**{name: str(value) for name, value in values.items()})
    except (KeyError, IndexError, ValueError):  # a catalog entry that lost a placeholder: the English one
        return message.format(**{name: str(value) for name, value in values.items()})


def error_response(
    status: int, message: str, code: str | None = None, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    body = {"error": {"code": code or CODES.get(status, "error"), "message": message}}
    extra = dict(headers or {})
    if status == 401:
        extra.setdefault("WWW-Authenticate", "Bearer")
    return JSONResponse(body, status_code=status, headers=extra or None)


def install(app: FastAPI) -> None:
    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        values = exc.values if isinstance(exc, ApiError) else None
        message = localise(str(exc.detail), request_locale(request), values)
        headers = {**(exc.headers or {}), "Content-Language": request_locale(request)}
        return error_response(exc.status_code, message, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
        locale = request_locale(request)
        message = localise(N_("invalid request: {problems}"), locale, {"problems": problems})
        return error_response(422, message, "invalid_request", {"Content-Language": locale})
