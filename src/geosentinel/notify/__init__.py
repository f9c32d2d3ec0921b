"""Notifications: an alert in each recipient's words (:mod:`.messages`), signed links that take an alert
without logging in (:mod:`.ack_links`), and sending through a contact's channels (:mod:`.channels`).

Only the pure parts are re-exported here: importing the package must not load Apprise (half a second,
and network code) into pure callers. Import ``deliver`` from :mod:`geosentinel.notify.channels`.
"""

from geosentinel.notify.ack_links import AckClaim, AckLinkProblem, AckSigner, InvalidAckLink
from geosentinel.notify.messages import AlertNotice, RenderedMessage, kind_label, map_link, render

__all__ = [
    "AckClaim",
    "AckLinkProblem",
    "AckSigner",
    "AlertNotice",
    "InvalidAckLink",
    "RenderedMessage",
    "kind_label",
    "map_link",
    "render",
]
