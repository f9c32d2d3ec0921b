"""The organisation and its users in the store (store/users.py), on every backend: always within the
caller's organisation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from geosentinel.model import Locale, Region, Role
from geosentinel.store import Scope, Store
from geosentinel.store.users import UnknownWearers

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def _org(store: Store, name: str) -> str:
    return store.create_org(name, Region.EU, "Europe/Paris", Locale.FR).id


def test_the_organisation_with_its_settings(store: Store) -> None:
    org_id = _org(store, "Org A")
    _org(store, "Org B")
    store.set_retention(org_id, 90)
    org = store.organisation(Scope(org_id))
    assert org is not None
    assert (org.id, org.name, org.region, org.timezone, org.locale, org.retention_days) == (
        org_id, "Org A", Region.EU, "Europe/Paris", Locale.FR, 90,
    )  # fmt: skip
    assert store.organisation(Scope("no such org")) is None


def test_users_are_listed_by_email_within_the_organisation_and_paged(store: Store) -> None:
    org_a, org_b = _org(store, "Org A"), _org(store, "Org B")
    for email, role in [("c@a.org", Role.CAREGIVER), ("a@a.org", Role.ADMIN), ("b@a.org", Role.FAMILY)]:
        store.create_user(org_a, email, "hash", role, email[0].upper())
    store.create_user(org_b, "z@b.org", "hash", Role.ADMIN, "Z")
    listed = store.users(Scope(org_a))
    assert [r.user.email for r in listed] == ["a@a.org", "b@a.org", "c@a.org"]
    assert all(r.disabled_at is None and r.created_at.tzinfo is not None for r in listed)
    assert [r.user.email for r in store.users(Scope(org_a), limit=2, offset=1)] == ["b@a.org", "c@a.org"]
    assert [r.user.email for r in store.users(Scope(org_a), role=Role.FAMILY)] == ["b@a.org"]
    assert [r.user.email for r in store.users(Scope(org_b))] == ["z@b.org"]
    b_user = store.users(Scope(org_b))[0].user
    assert store.user_record(Scope(org_a), b_user.id) is None
    assert store.user_record(Scope(org_b), b_user.id) == store.users(Scope(org_b))[0]


def test_a_family_members_wearers_are_replaced_within_the_organisation(store: Store) -> None:
    org_a, org_b = _org(store, "Org A"), _org(store, "Org B")
    w1, w2 = store.create_wearer(org_a, "W1"), store.create_wearer(org_a, "W2")
    other = store.create_wearer(org_b, "Other")
    family = store.create_user(org_a, "fam@a.org", "hash", Role.FAMILY, "Fam")
    store.link_wearer(family.id, w1.id)
    assert store.set_linked_wearers(Scope(org_a), family.id, [w2.id, w2.id])
    assert store.linked_wearers(family.id) == {w2.id}
    record = store.user_record(Scope(org_a), family.id)
    assert record is not None and record.wearer_ids == (w2.id,)
    with pytest.raises(UnknownWearers) as refused:
        store.set_linked_wearers(Scope(org_a), family.id, [w1.id, other.id])
    assert refused.value.wearer_ids == (other.id,)
    assert store.linked_wearers(family.id) == {w2.id}  # unchanged
    assert not store.set_linked_wearers(Scope(org_b), family.id, [other.id])  # not B's user
    assert store.linked_wearers(family.id) == {w2.id}
    assert store.set_linked_wearers(Scope(org_a), family.id, [])
    assert store.linked_wearers(family.id) == frozenset()


def test_disabling_a_user_ends_their_sessions_and_tokens_and_logins(store: Store) -> None:
    org_a, org_b = _org(store, "Org A"), _org(store, "Org B")
    user = store.create_user(org_a, "gone@a.org", "hash", Role.CAREGIVER, "Gone")
    kept = store.create_user(org_a, "kept@a.org", "hash", Role.CAREGIVER, "Kept")
    for who in (user, kept):
        store.create_session(who.id, f"session-{who.id}", "csrf", NOW, NOW + timedelta(hours=1))
        store.create_scoped_token(who.id, f"token-{who.id}", "t", ["read"], NOW)
    assert not store.disable_user(Scope(org_b), user.id, NOW)  # another organisation's user
    assert store.login_state("gone@a.org") is not None

    assert store.disable_user(Scope(org_a), user.id, NOW)
    assert store.login_state("gone@a.org") is None
    assert store.session_user(f"session-{user.id}", NOW) is None
    assert store.token_access(f"token-{user.id}") is None
    assert [t.revoked_at for t in store.tokens_of(user.id)] == [NOW]
    record = store.user_record(Scope(org_a), user.id)
    assert record is not None and record.disabled_at == NOW
    # Again: nothing changes (the first time stays).
    assert store.disable_user(Scope(org_a), user.id, NOW + timedelta(hours=1))
    record = store.user_record(Scope(org_a), user.id)
    assert record is not None and record.disabled_at == NOW
    # The others keep working.
    assert store.login_state("kept@a.org") is not None
    assert store.session_user(f"session-{kept.id}", NOW) is not None
    assert store.token_access(f"token-{kept.id}") is not None
    assert not store.disable_user(Scope(org_a), "no such user", NOW)
