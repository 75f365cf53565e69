"""Sealing a lead's identifying fields: what is sealed, what opens it, and what does not."""

from __future__ import annotations

import base64

import pytest

from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.leads.sealing import PiiKeyring, SealError, new_key
from leadx.platform.config import ConfigError

FIELDS = {"first_name": "Ana", "last_name": "Lee", "ssn": "123-45-6789", "email": "ana@example.com",
          "home_phone": "2125550143", "work_phone": "2125550199", "address": "1 Main St",
          "date_of_birth": "1980-02-03", "employer": "Acme", "zip": "10001", "state": "NY",
          "gross_monthly_income": "500000"}
K1, K2 = new_key("k1"), new_key("k2")


def lead(fields: dict[str, str] = FIELDS, lead_id: str = "L000000001") -> ev.Lead:
    return ev.Lead(lead_id=lead_id, seller_id="s_1", vertical="auto_loan", fields=fields)


def test_identifying_fields_leave_the_plain_fields_and_appear_nowhere_in_the_record():
    keyring = PiiKeyring.parse(K1)
    sealed = keyring.seal(lead())
    assert dict(sealed.fields) == {"zip": "10001", "state": "NY", "gross_monthly_income": "500000"}
    assert sealed.sealed.key_id == "k1"
    raw = ev.AuctionClosed(auction_id="L000000001", lead=sealed).SerializeToString()
    for name in ("first_name", "last_name", "ssn", "email", "home_phone", "work_phone", "address",
                 "date_of_birth", "employer"):
        assert FIELDS[name].encode() not in raw, name
        assert name.encode() not in raw  # not even which identifying fields the lead has
    assert keyring.fields_of(sealed) == FIELDS


def test_every_lead_gets_its_own_data_key_and_nonces():
    keyring = PiiKeyring.parse(K1)
    first, second = keyring.seal(lead()), keyring.seal(lead())
    assert first.sealed.wrapped_key != second.sealed.wrapped_key
    assert first.sealed.ciphertext != second.sealed.ciphertext


def test_the_opened_copy_is_whole_and_the_original_stays_sealed():
    keyring = PiiKeyring.parse(K1)
    sealed = keyring.seal(lead())
    opened = keyring.opened(sealed)
    assert dict(opened.fields) == FIELDS and not opened.HasField("sealed")
    assert sealed.HasField("sealed") and "ssn" not in sealed.fields


def test_a_lead_without_identifying_fields_or_written_before_the_seal_reads_as_it_is():
    keyring = PiiKeyring.parse(K1)
    plain = keyring.seal(lead({"zip": "10001"}))
    assert not plain.HasField("sealed") and keyring.fields_of(plain) == {"zip": "10001"}
    older = lead()  # a record from before the seal: its identifying fields are plain
    assert keyring.fields_of(older) == FIELDS


def test_sealing_again_keeps_what_was_sealed_and_adds_what_is_new():
    keyring = PiiKeyring.parse(K1)
    sealed = keyring.seal(lead())
    sealed.fields["email"] = "new@example.com"
    keyring.seal(sealed)
    assert "email" not in sealed.fields
    assert keyring.fields_of(sealed) == FIELDS | {"email": "new@example.com"}


def test_rotation_new_key_seals_and_the_old_still_opens_until_it_is_dropped():
    old = PiiKeyring.parse(K1).seal(lead())
    during = PiiKeyring.parse(f"{K2},{K1}")
    assert during.current_id == "k2" and during.key_ids == ("k2", "k1")
    assert during.fields_of(old) == FIELDS
    assert during.seal(lead()).sealed.key_id == "k2"
    after = PiiKeyring.parse(K2)
    with pytest.raises(SealError, match="sealed under key 'k1'"):
        after.fields_of(old)


def test_a_seal_altered_or_moved_to_another_lead_does_not_open():
    keyring = PiiKeyring.parse(K1)
    sealed = keyring.seal(lead())
    moved = lead({"zip": "10001"}, lead_id="L000000002")
    moved.sealed.CopyFrom(sealed.sealed)
    with pytest.raises(SealError, match="sealed for another lead"):
        keyring.fields_of(moved)
    altered = ev.Lead()
    altered.CopyFrom(sealed)
    altered.sealed.ciphertext = altered.sealed.ciphertext[:-1] + bytes([altered.sealed.ciphertext[-1] ^ 1])
    with pytest.raises(SealError):
        keyring.fields_of(altered)
    relabelled = ev.Lead()
    relabelled.CopyFrom(sealed)
    relabelled.sealed.key_id = "k2"  # the key id is sealed in too: even the same bytes under
    same_bytes = PiiKeyring.parse(f"{K1},k2:{K1.split(':', 1)[1]}")  # another id do not open it
    with pytest.raises(SealError):
        same_bytes.fields_of(relabelled)


@pytest.mark.parametrize(("text", "message"), [
    ("", "each key is id:base64"),
    ("k1", "each key is id:base64"),
    ("k 1:" + base64.b64encode(bytes(32)).decode(), "each key is id:base64"),
    ("k1:not base64!", "key 'k1' is not base64"),
    ("k1:" + base64.b64encode(bytes(16)).decode(), "key 'k1' must be 32 bytes, got 16"),
    (f"{K1},{K1}", "key id 'k1' is listed twice"),
], ids=["empty", "no-key", "bad-id", "not-base64", "short", "twice"])  # ids: the keys are random, each run
def test_malformed_keys_stop_the_service_naming_the_setting(text: str, message: str):
    with pytest.raises(ConfigError, match=f"LEADX_PII_KEYS: {message}"):
        PiiKeyring.parse(text)


def test_the_setting_is_required(monkeypatch):
    monkeypatch.delenv("LEADX_PII_KEYS", raising=False)
    with pytest.raises(ConfigError, match="LEADX_PII_KEYS is required"):
        PiiKeyring.from_env()
    monkeypatch.setenv("LEADX_PII_KEYS", K1)
    assert PiiKeyring.from_env().current_id == "k1"
