"""Identity keys under a keyring of HMAC keys (pure): one per key id, the current key's first, named
by their key id where they travel, bare under the implicit id as before key ids."""

from __future__ import annotations

from leadx.leads import pii
from leadx.platform.config import HmacKeyring

OLD, NEW = "old-secret-0123456789abcdef", "new-secret-fedcba9876543210"
FIELDS = {"ssn": "123-45-6789", "email": "Ana.Lee+cars@googlemail.com", "home_phone": " ", "first_name": "Ana"}


def test_one_implicit_key_gives_the_keys_of_before():
    under = pii.identity_keys_under(HmacKeyring.single(OLD.encode()), FIELDS)
    assert under == {kind: [key] for kind, key in pii.identity_keys(OLD.encode(), FIELDS).items()}
    assert set(under) == {"ssn", "email"}  # absent and blank identities are left out, as before


def test_during_a_rotation_each_identity_has_a_key_per_key_id_the_current_first():
    ring = HmacKeyring.parse(f"k1:{NEW},k0:{OLD}")
    under = pii.identity_keys_under(ring, FIELDS, email_provider_rules=False)
    for kind, (current, old) in under.items():
        assert current == f"k1:{pii.identity_key(NEW.encode(), kind, FIELDS[kind], False)}"
        assert old == pii.identity_key(OLD.encode(), kind, FIELDS[kind], False)  # k0: bare
    assert pii.listed(under) == [under["ssn"][0], under["email"][0], under["ssn"][1], under["email"][1]]


def test_a_key_id_is_read_back_from_what_events_carry():
    identity = pii.identity_key(NEW.encode(), "ssn", "123456789")
    assert pii.untagged(pii.tagged("k1", identity)) == ("k1", identity)
    assert pii.untagged(identity) == ("k0", identity)  # an event written before key ids
    assert pii.tagged("k0", identity) == identity
    assert pii.listed({}) == []
