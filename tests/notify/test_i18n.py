"""The catalogs: complete, in step with the code, read at run time, English as the fallback."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po

from geosentinel import i18n
from geosentinel.i18n import babel_locale, catalog_path, normalise_locale, supported_locales, translator

# Every module whose texts the catalogs translate: notifications, and the API (its acknowledgement page and
# its error messages, marked N_).
PACKAGE = Path(i18n.__file__).parent
SOURCES = [PACKAGE / "notify" / "messages.py", *sorted((PACKAGE / "api").rglob("*.py"))]
PLACEHOLDER = re.compile(r"\{(\w*)\}")


def catalog(locale: str) -> Catalog:
    with catalog_path(locale).open("rb") as po:
        return read_po(po, locale=babel_locale(locale))


def msgids_in_code() -> set[str]:
    found: set[str] = set()
    for source in SOURCES:
        for _, message, _, _ in extract_from_file("python", str(source)):
            found.add(message[0] if isinstance(message, tuple) else message)
    return found


def test_the_supported_languages() -> None:
    assert supported_locales() == ("en", "fr", "zh")


@pytest.mark.parametrize("locale", ["en", "fr", "zh"])
def test_every_catalog_has_exactly_the_msgids_of_the_code(locale: str) -> None:
    in_catalog = {m.id[0] if isinstance(m.id, tuple) else m.id for m in catalog(locale) if m.id}
    code = msgids_in_code()
    assert code - in_catalog == set(), "msgids missing from the catalog"
    assert in_catalog - code == set(), "msgids no longer used by the code"


@pytest.mark.parametrize("locale", ["fr", "zh"])
def test_every_msgid_is_translated_with_the_same_placeholders(locale: str) -> None:
    for message in catalog(locale):
        if not message.id:
            continue  # the header
        assert not message.fuzzy, message.id
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        raw = message.string
        strings = [str(s) for s in raw] if isinstance(raw, tuple | list) else [str(raw)]
        assert raw is not None and all(s.strip() for s in strings), f"untranslated: {message.id!r}"
        expected = set(PLACEHOLDER.findall(str(ids[-1])))
        for string in strings:
            assert set(PLACEHOLDER.findall(string)) == expected, (message.id, string)


def test_the_plural_forms_follow_each_language() -> None:
    assert (
        translator("fr")
        .ngettext("First raised on {when}, repeated {count} time.", "x", 1)
        .startswith("Premi")
    )
    assert (
        translator("zh").ngettext("First raised on {when}, repeated {count} time.", "x", 5).startswith("首次")
    )
    assert translator("en").ngettext("a {count} time", "{count} times", 2) == "{count} times"


def test_unknown_or_regional_locales_map_to_a_catalog() -> None:
    assert normalise_locale("fr_FR") == "fr" and normalise_locale("fr-CA") == "fr"
    assert normalise_locale("zh-Hans-CN") == "zh" and normalise_locale("ZH") == "zh"
    assert normalise_locale("de") == "en" and normalise_locale("") == "en"
    assert translator("pt_BR").gettext("No position known.") == "No position known."
    assert translator("fr_BE").gettext("No position known.") == "Position inconnue."


def test_catalogs_are_compiled_once_per_language() -> None:
    assert translator("fr") is translator("fr_FR") is translator("fr-CA")
    assert translator("fr") is not translator("zh")


def test_no_compiled_catalog_is_committed() -> None:
    locales = resources.files("geosentinel") / "locales"
    assert not list(Path(str(locales)).rglob("*.mo"))
