"""Ready-made escalation policies: the French téléassistance charter, a care home, a family-only setup.

- **fr_charter** — France's national téléassistance charter (September 2024): each subscriber has two
  contacts who can reach the home within 20 minutes; when the person does not respond, the centre calls
  contact 1 twice, then contact 2 twice, then sends the emergency services, and a call that nobody
  answers is treated as an emergency. Here: the wearer's contact 1 (``wearer:1``) twice, contact 2
  twice, ``attempt_gap_s`` apart, then the organisation's emergency step (its control room or an
  emergency number, as Apprise targets), and the whole sequence again after 5 minutes while nobody has
  taken the alert. It is the default of organisations whose language is French.
- **care_home** — the staff on duty at once, the night nurse if nobody has taken it after 3 minutes (the
  social-alarm practice of investigating calls not answered within 180 s).
- **family_only** — no organisation behind the wearer: contact 1, contact 2 two minutes later, then
  everyone the wearer has.

A wearer without a second contact skips that step's turn (see :mod:`.policy`): the emergency step comes
sooner, never later.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from geosentinel.alerts.policy import Policy, Step

TemplateName = Literal["fr_charter", "care_home", "family_only"]
ALL_WEARER_CONTACTS: Final = [f"wearer:{rank}" for rank in range(1, 10)]
DEFAULT_ATTEMPT_GAP_S: Final = 60
NIGHT_NURSE_AFTER_S: Final = 180


class TemplateError(ValueError):
    """A template asked for without what it needs (the message says what)."""


@dataclass(frozen=True, slots=True)
class Template:
    name: TemplateName
    summary: str
    needs: tuple[str, ...]  # the contact groups it takes: "emergency", "staff", "night_nurse"


TEMPLATES: Final[dict[str, Template]] = {
    "fr_charter": Template(
        "fr_charter",
        "French téléassistance charter: the wearer's contact 1 twice, contact 2 twice, then the "
        "organisation's emergency step",
        ("emergency",),
    ),
    "care_home": Template(
        "care_home",
        "Care home: the staff on duty, then the night nurse after 3 minutes",
        ("staff", "night_nurse"),
    ),
    "family_only": Template(
        "family_only", "Family only: contact 1, contact 2 after 2 minutes, then all the wearer's contacts", ()
    ),
}


def fr_charter(emergency: Sequence[str], attempt_gap_s: int = DEFAULT_ATTEMPT_GAP_S) -> Policy:
    steps = [
        Step(["wearer:1"], 0),
        Step(["wearer:1"], attempt_gap_s),
        Step(["wearer:2"], attempt_gap_s),
        Step(["wearer:2"], attempt_gap_s),
    ]
    if emergency:
        steps.append(Step(list(emergency), attempt_gap_s))
    return Policy(steps, repeat_after_s=300, max_rounds=3)


def care_home(staff: Sequence[str], night_nurse: Sequence[str]) -> Policy:
    if not staff or not night_nurse:
        raise TemplateError("the care home template needs staff on duty and a night nurse")
    return Policy([Step(list(staff), 0), Step(list(night_nurse), NIGHT_NURSE_AFTER_S)], 300, 5)


def family_only() -> Policy:
    return Policy(
        [Step(["wearer:1"], 0), Step(["wearer:2"], 120), Step(list(ALL_WEARER_CONTACTS), 120)], 600, 3
    )


def build(
    name: str,
    emergency: Sequence[str] = (),
    staff: Sequence[str] = (),
    night_nurse: Sequence[str] = (),
    attempt_gap_s: int = DEFAULT_ATTEMPT_GAP_S,
) -> Policy:
    if name == "fr_charter":
        if not emergency:
            raise TemplateError("the charter template needs the organisation's emergency contact")
        return fr_charter(emergency, attempt_gap_s)
    if name == "care_home":
        return care_home(staff, night_nurse)
    if name == "family_only":
        return family_only()
    raise TemplateError(f"no template {name!r} (known: {', '.join(TEMPLATES)})")


def recommended(org_locale: str) -> TemplateName:
    return "fr_charter" if org_locale == "fr" else "family_only"


def fallback_policy(org_locale: str, staff: Sequence[str]) -> Policy:
    """The policy of an organisation that has set none (``staff``: its contacts that are nobody's own).

    French organisations follow the charter, their staff as the emergency step. Others tell the wearer's
    own contacts and the staff at once, again every 10 minutes."""
    if org_locale == "fr":
        return fr_charter(staff)
    return Policy([Step([*staff, *ALL_WEARER_CONTACTS])])
