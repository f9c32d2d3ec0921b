"""docs/notifications.md as tests: every contact URL it shows is one Apprise accepts (parsed, never sent)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from geosentinel.notify.channels import redact

DOC = Path(__file__).parents[2] / "docs" / "notifications.md"
EXAMPLES = sorted(
    {url for url in re.findall(r"`([a-z0-9]+://[^`\s]+)`", DOC.read_text()) if not url.startswith("http")}
)


def test_the_doc_shows_the_usual_channels() -> None:
    schemes = {url.split("://")[0] for url in EXAMPLES}
    assert {"mailto", "mailtos", "jsons", "ntfys", "tgram", "twilio", "wecombot"} <= schemes


@pytest.mark.parametrize("url", EXAMPLES)
def test_every_example_url_is_one_apprise_accepts(url: str) -> None:
    shown = redact(url)
    assert not shown.endswith("://****"), f"Apprise refuses {url}"
    secrets = (
        "APP_PASSWORD",
        "BOT_TOKEN",
        "API_TOKEN",
        "SECRET_ACCESS_KEY",
        "0123456789abcdef0123456789abcdef",
    )
    for secret in secrets:
        assert secret not in shown, shown
