"""``/api/v1/session``: password login for the dashboard, with a session cookie and a CSRF token.

The cookie (``gs_session``) is HttpOnly (scripts cannot read it), SameSite=Strict (other sites' pages do
not send it), Secure when the API is served over HTTPS, and expires after 12 hours. Every request that
changes something with the cookie must also carry the session's CSRF token in ``X-CSRF-Token``
(:mod:`geosentinel.api.deps`). Bearer tokens, which browsers never send by themselves, need no CSRF token.

Guessing is braked three ways: 20 attempts per client address per 10 minutes; 5 failed logins in a row
lock an account for 15 minutes; unknown addresses get the same answers as real ones (and the same time:
a dummy hash is checked), so the API does not tell which addresses have accounts.
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from geosentinel.api.deps import CSRF_HEADER, SESSION_COOKIE, CallerDep, StoreDep
from geosentinel.api.errors import N_, ApiError
from geosentinel.api.login_limits import LoginLimits
from geosentinel.auth import hash_password, token_hash, verify_password
from geosentinel.model import User

router = APIRouter(prefix="/session", tags=["accounts"])
SESSION_TTL = timedelta(hours=12)
_DUMMY_HASH = hash_password("not-a-password-" + secrets.token_hex(8))  # equal time for unknown e-mails


class LoginIn(BaseModel):
    email: Annotated[str, Field(min_length=3, max_length=320)]
    password: Annotated[str, Field(min_length=1, max_length=1024)]


class SessionUser(BaseModel):
    id: str
    org_id: str
    email: str
    role: str
    display_name: str


class SessionOut(BaseModel):
    user: SessionUser
    csrf_token: str | None  # send it as X-CSRF-Token with every change (null: a bearer token needs none)
    csrf_header: str = CSRF_HEADER


def _user(user: User) -> SessionUser:
    return SessionUser(id=user.id, org_id=user.org_id, email=user.email, role=user.role.value,
                       display_name=user.display_name)  # fmt: skip


def limits(request: Request) -> LoginLimits:
    found: LoginLimits | None = getattr(request.app.state, "login_limits", None)
    if found is None:
        found = request.app.state.login_limits = LoginLimits()
    return found


@router.post("", response_model=SessionOut)
async def log_in(body: LoginIn, request: Request, response: Response, store: StoreDep) -> SessionOut:
    """Log in with e-mail and password: sets the session cookie and answers the CSRF token."""
    now = datetime.now(UTC)
    brakes = limits(request)
    address = request.client.host if request.client else "unknown"
    too_many = ApiError(429, N_("too many attempts: try again later"), headers={"Retry-After": "900"})
    if not brakes.allow_attempt(address, now):
        raise too_many
    email = body.email.strip().lower()
    state = await asyncio.to_thread(store.login_state, email)
    if state is None:
        await asyncio.to_thread(verify_password, _DUMMY_HASH, body.password)
        if brakes.unknown_locked(email, now) or brakes.unknown_failed(email, now):
            raise too_many
        raise ApiError(401, N_("wrong e-mail or password"))
    if state.locked_until is not None and now < state.locked_until:
        raise too_many
    if not await asyncio.to_thread(verify_password, state.password_hash, body.password):
        locked = await asyncio.to_thread(
            store.record_login_failure, state.user.id, now, brakes.max_failures, brakes.lock_for
        )
        if locked is not None:
            raise too_many
        raise ApiError(401, N_("wrong e-mail or password"))
    await asyncio.to_thread(store.record_login_success, state.user.id)
    session, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    await asyncio.to_thread(
        store.create_session, state.user.id, token_hash(session), csrf, now, now + SESSION_TTL
    )
    response.set_cookie(
        SESSION_COOKIE, session, max_age=int(SESSION_TTL.total_seconds()), httponly=True, samesite="strict",
        secure=request.url.scheme == "https", path="/",
    )  # fmt: skip
    return SessionOut(user=_user(state.user), csrf_token=csrf)


@router.get("", response_model=SessionOut)
async def current_session(caller: CallerDep) -> SessionOut:
    """Who is logged in, and the session's CSRF token (e.g. for a dashboard page that was reloaded)."""
    return SessionOut(user=_user(caller.user), csrf_token=caller.csrf_token)


@router.delete("", status_code=204)
async def log_out(request: Request, response: Response, store: StoreDep, caller: CallerDep) -> None:
    """End the session: the cookie stops working at once, even if someone kept a copy."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        await asyncio.to_thread(store.end_session, token_hash(cookie), datetime.now(UTC))
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
