"""``/ack/<token>``: a notified contact takes an alert from their phone, without logging in.

The link in a notification opens a small page (in the contact's language) that says which alert it is
and asks to confirm; only the confirming POST acknowledges. A GET never changes anything, because mail
scanners and chat apps open links to preview them. The token is signed and expires (notify.ack_links); it
names the alert, the contact and the notification, and all three must still agree with the store. The
audit trail records the contact as the one who took it.
"""

from __future__ import annotations

import asyncio
import html
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from geosentinel.alerts.feed import AlertFeed
from geosentinel.alerts.lifecycle import Action, TransitionError
from geosentinel.i18n import translator
from geosentinel.model import AlertStatus
from geosentinel.notify.ack_links import AckClaim, AckSigner, InvalidAckLink
from geosentinel.notify.messages import kind_label
from geosentinel.store import Scope, Store
from geosentinel.store.alert_care import AckTarget, AlertNotFound

router = APIRouter(tags=["alerts"], include_in_schema=True)


def _page(
    locale: str, title: str, lines: list[str], status: int, form_action: str | None = None
) -> HTMLResponse:
    t = translator(locale)
    button = ""
    if form_action is not None:
        label = html.escape(t.gettext("I take this alert"))
        button = (
            f'<form method="post" action="{html.escape(form_action)}">'
            f'<button type="submit" style="font-size:1.4em;padding:.6em 1.2em">{label}</button></form>'
        )
    body = "".join(f"<p>{html.escape(line)}</p>" for line in lines)
    document = (
        f'<!doctype html><html lang="{html.escape(locale)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title></head>"
        f'<body style="font-family:sans-serif;max-width:32em;margin:2em auto;padding:0 1em">'
        f"<h1>{html.escape(title)}</h1>{body}{button}</body></html>"
    )
    return HTMLResponse(document, status_code=status, headers={"Cache-Control": "no-store"})


def _check(request: Request, token: str) -> tuple[AckClaim, AckTarget] | HTMLResponse:
    signer: AckSigner | None = request.app.state.ack_signer
    if signer is None:
        return _page("en", "Link not available", ["Acknowledgement links are not enabled here."], 404)
    try:
        claim = signer.verify(token, datetime.now(UTC))
    except InvalidAckLink as exc:
        t = translator("en")
        if exc.reason.value == "expired":
            return _page(
                "en", t.gettext("This link has expired"), [t.gettext("Open the alert in GeoSentinel.")], 410
            )
        return _page(
            "en", t.gettext("This link is not valid"), [t.gettext("Open the alert in GeoSentinel.")], 400
        )
    store: Store = request.app.state.store
    target = store.ack_target(claim.notification_id)
    if target is None or (target.alert_id, target.contact_id) != (claim.alert_id, claim.contact_id):
        return _page("en", "This link is not valid", ["Open the alert in GeoSentinel."], 400)
    return claim, target


def _kind(target: AckTarget) -> str:
    return kind_label(target.kind, target.locale.value)


@router.get("/ack/{token}", response_class=HTMLResponse, summary="Confirm taking an alert (page)")
async def ack_page(token: str, request: Request) -> HTMLResponse:
    checked = await asyncio.to_thread(_check, request, token)
    if isinstance(checked, HTMLResponse):
        return checked
    _, target = checked
    t = translator(target.locale.value)
    title = t.gettext("Alert for {name}").format(name=target.wearer_name)
    if target.status is not AlertStatus.OPEN:
        return _page(target.locale.value, title, [t.gettext("Someone has already taken this alert.")], 200)
    lines = [_kind(target), t.gettext("Nobody has taken this alert yet.")]
    return _page(target.locale.value, title, lines, 200, form_action=f"/ack/{token}")


@router.post(
    "/ack/{token}", response_class=HTMLResponse, summary="Take an alert through a notification's link"
)
async def ack_confirm(token: str, request: Request) -> HTMLResponse:
    checked = await asyncio.to_thread(_check, request, token)
    if isinstance(checked, HTMLResponse):
        return checked
    claim, target = checked
    t = translator(target.locale.value)
    title = t.gettext("Alert for {name}").format(name=target.wearer_name)
    store: Store = request.app.state.store
    try:
        alert = await asyncio.to_thread(
            store.change_alert, Scope(target.org_id), claim.alert_id, Action.ACKNOWLEDGE,
            f"contact:{claim.contact_id}", datetime.now(UTC), None, "taken through a notification link",
        )  # fmt: skip
    except TransitionError:
        return _page(target.locale.value, title, [t.gettext("Someone has already taken this alert.")], 409)
    except AlertNotFound:
        return _page(target.locale.value, "This link is not valid", ["Open the alert in GeoSentinel."], 400)
    feed: AlertFeed = request.app.state.alert_feed
    feed.changed(alert, Action.ACKNOWLEDGE)
    return _page(
        target.locale.value, title, [t.gettext("Thank you: the alert is yours. Escalation has stopped.")], 200
    )
