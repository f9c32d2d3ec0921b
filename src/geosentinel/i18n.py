"""The languages GeoSentinel writes to people in, from gettext catalogs read at run time.

Catalogs live in ``geosentinel/locales/<lang>/LC_MESSAGES/messages.po`` and are compiled in memory the
first time a language is asked for (no ``.mo`` files to build or to forget to rebuild). English is the
source language: its catalog holds the msgids with empty translations, and every lookup that finds no
translation falls back to the English msgid.

Adding a language: copy ``en/LC_MESSAGES/messages.po`` to ``<lang>/LC_MESSAGES/messages.po``, translate
every ``msgstr``, set its ``Plural-Forms`` header, and add the language to :data:`BABEL_LOCALES`
(``tests/notify/test_i18n.py`` fails until every msgid is translated).
"""

from __future__ import annotations

import functools
import io
from importlib import resources

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

DEFAULT_LOCALE = "en"

# Our language code → the Babel/CLDR locale used to format dates and numbers in it. French and English
# follow CLDR's defaults for the language; Chinese is pinned to Simplified script (the catalog's script).
BABEL_LOCALES: dict[str, str] = {"en": "en", "fr": "fr_FR", "zh": "zh_Hans_CN"}


def supported_locales() -> tuple[str, ...]:
    """The language codes that have a catalog, in a stable order."""
    return tuple(sorted(BABEL_LOCALES))


def normalise_locale(locale: str) -> str:
    """Our language code for ``locale`` (``"fr_FR"``, ``"fr-CA"``, ``"zh-Hans"`` → ``"fr"``, ``"zh"``);
    English for a language we do not have."""
    language = locale.replace("-", "_").split("_", 1)[0].strip().lower()
    return language if language in BABEL_LOCALES else DEFAULT_LOCALE


def babel_locale(locale: str) -> str:
    """The Babel locale identifier that formats dates and numbers for ``locale``."""
    return BABEL_LOCALES[normalise_locale(locale)]


def translator(locale: str) -> Translations:
    """The translations for ``locale`` (unknown languages get English), compiled once per language."""
    return _compiled(normalise_locale(locale))


def catalog_path(locale: str) -> resources.abc.Traversable:
    """Where the ``.po`` catalog of a supported language is (inside the installed package)."""
    return resources.files("geosentinel") / "locales" / locale / "LC_MESSAGES" / "messages.po"


@functools.cache
def _compiled(locale: str) -> Translations:
    with catalog_path(locale).open("rb") as po:
        catalog = read_po(po, locale=BABEL_LOCALES[locale])
    mo = io.BytesIO()
    write_mo(mo, catalog)  # fuzzy entries are left out, as msgfmt does: an unsure translation is not shown
    mo.seek(0)
    return Translations(fp=mo, domain="messages")
