"""The interface speaks French, English and Chinese: every string exists in the three languages."""

from __future__ import annotations

import re
from pathlib import Path

STRINGS = Path(__file__).parent.parent.parent / "web" / "src" / "strings.js"
# A key starts a line or follows the previous value's closing quote and comma.
KEY = re.compile(r'(?:^\s+|",\s+)(?:"([\w.]+)"|([A-Za-z_]\w*)):\s"', re.M)


def _languages() -> dict[str, set[str]]:
    text = STRINGS.read_text()
    blocks = re.split(r"^  (en|fr|zh): \{$", text, flags=re.M)
    found = {blocks[i]: blocks[i + 1] for i in range(1, len(blocks), 2)}
    return {lang: {a or b for a, b in KEY.findall(block)} for lang, block in found.items()}


def test_every_string_is_in_french_english_and_chinese() -> None:
    languages = _languages()
    assert set(languages) == {"en", "fr", "zh"}
    assert len(languages["en"]) > 150
    assert languages["fr"] == languages["en"]
    assert languages["zh"] == languages["en"]


def test_every_key_the_scripts_use_exists() -> None:
    keys = _languages()["en"]
    used: set[str] = set()
    for path in STRINGS.parent.glob("*.js"):
        used |= set(re.findall(r'\bt\("([\w.]+)"', path.read_text()))
    assert used - keys == set()
