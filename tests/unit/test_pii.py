import pytest

from leadx.leads import pii

SECRET = b"a-test-secret-of-some-length"


def test_normalisation():
    assert pii.normalise("ssn", " 123-45 6789 ") == "123456789"
    assert pii.normalise("email", "  Ana.Diaz@Example.COM ") == "ana.diaz@example.com"
    assert pii.normalise("home_phone", "+1 (212) 555-0142") == "2125550142"
    assert pii.normalise("home_phone", "212.555.0142") == "2125550142"


def test_the_same_identity_gets_the_same_key_however_it_is_written():
    assert pii.identity_key(SECRET, "email", "ANA@example.com ") == pii.identity_key(SECRET, "email", "ana@example.com")
    assert pii.identity_key(SECRET, "home_phone", "1-212-555-0142") == pii.identity_key(SECRET, "home_phone",
                                                                                       "(212) 555 0142")


def test_keys_depend_on_secret_and_kind_and_hide_the_value():
    ssn_key = pii.identity_key(SECRET, "ssn", "212555014")
    assert ssn_key != pii.identity_key(b"another-secret-entirely", "ssn", "212555014")
    assert ssn_key != pii.identity_key(SECRET, "home_phone", "212555014")
    assert "212555014" not in ssn_key and len(ssn_key) == 32


def test_identity_keys_skip_absent_and_empty_fields():
    keys = pii.identity_keys(SECRET, {"ssn": "123456789", "email": " ", "first_name": "Ana"})
    assert set(keys) == {"ssn"}


@pytest.mark.parametrize(("address", "canonical"), [
    ("ana.lee+cars@gmail.com", "analee@gmail.com"),
    ("a.n.a.lee@googlemail.com", "analee@gmail.com"),
    ("ana.lee+cars+more@outlook.com", "ana.lee@outlook.com"),  # outlook keeps dots, drops the tag
    ("ana.lee+cars@example.com", "ana.lee+cars@example.com"),  # unknown provider: untouched
    ("no-at-sign", "no-at-sign"),
])
def test_canonical_email(address, canonical):
    assert pii.canonical_email(address) == canonical


def test_email_provider_rules_are_a_setting():
    tagged, plain = " Ana.Lee+Cars@Gmail.com", "analee@gmail.com"
    assert pii.identity_key(SECRET, "email", tagged) == pii.identity_key(SECRET, "email", plain)
    assert (pii.identity_key(SECRET, "email", tagged, email_provider_rules=False)
            != pii.identity_key(SECRET, "email", plain, email_provider_rules=False))
    # What a seller hashes for a PING stays the plain normalisation (documented in the spec).
    assert pii.sha256_hex("email", tagged) == pii.sha256_hex("email", "ana.lee+cars@gmail.com")


@pytest.mark.parametrize("secret", [b"short-secret-16b", b"k" * 64, b"a-secret-longer-than-the-block-" * 4])
def test_the_precomputed_hmac_is_hmac_sha256(secret):
    import hmac

    for message in (b"", b"ssn:123456789", b"x" * 200):
        assert pii.hmac_sha256(secret, message) == hmac.digest(secret, message, "sha256")
