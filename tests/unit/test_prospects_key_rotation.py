"""The prospect pool across a rotation of the HMAC key (SQL on SQLite and PostgreSQL): a consumer
pooled under the old key is still found while it is listed, `rekey` moves the pool to the current
key, after which the old key can go."""

from __future__ import annotations

import csv
import io
import json
import time

import pytest
from sqlalchemy import select

from leadx.accounts import accounts
from leadx.cli.main import main
from leadx.dev.simulation.market import simulate
from leadx.leads import pii
from leadx.leads import status as lead_status
from leadx.leads.rules import PACKAGED_RULES, load_rulebook
from leadx.leads.verticals import load_verticals
from leadx.platform.config import HmacKeyring
from leadx.platform.db.models import Lead, Prospect
from leadx.platform.utc_days import DAY_MS
from leadx.prospects.pool import Identities, collect, import_rows, read_csv, rekey
from leadx.scoring.registry import load_prior

OLD, NEW = "old-secret-0123456789abcdef", "new-secret-fedcba9876543210"
K0 = Identities(OLD.encode())
ROTATING = Identities(HmacKeyring.parse(f"k1:{NEW},k0:{OLD}"))
DONE = Identities(HmacKeyring.parse(f"k1:{NEW}"))
AUTO_LOAN = load_verticals()["auto_loan"]
FIELDS = [f.name for f in AUTO_LOAN.fields]
RULES = load_rulebook(PACKAGED_RULES, load_verticals()).rules_for("auto_loan", "s_any")
NOW_MS = int(time.time() * 1000)
CONSUMERS = [{k: str(v) for k, v in lead.fields.items() if k != "vertical"}
             for lead in simulate(4, 33, NOW_MS - 42 * DAY_MS)]


@pytest.fixture(scope="module")
def bundle():
    return load_prior()


def import_file(sessions, bundle, rows: list[dict], identities: Identities):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FIELDS)
    writer.writerows([row.get(name, "") for name in FIELDS] for row in rows)
    with sessions() as session:
        seller_id = accounts.create_seller(session, "list seller").id
    with sessions.begin() as session:
        return import_rows(session, read_csv(io.StringIO(out.getvalue(), newline=""), AUTO_LOAN),
                           vertical=AUTO_LOAN, seller_id=seller_id, source_name="list.csv", rules=RULES,
                           identities=identities, bundle=bundle, now_ms=NOW_MS)


def email_keys(sessions) -> dict[str, str | None]:
    with sessions() as session:
        return {p.fields["email"]: p.email_key for p in session.scalars(select(Prospect))}


def test_a_consumer_pooled_under_the_old_key_is_found_until_the_pool_is_rekeyed(sessions, bundle):
    first = import_file(sessions, bundle, [CONSUMERS[0]], K0)
    assert first.imported == 1
    (pooled_email,) = email_keys(sessions)

    during = import_file(sessions, bundle, [CONSUMERS[0], CONSUMERS[1]], ROTATING)
    assert during.imported == 1 and during.duplicates[0]["duplicate_of"].keys() == {"prospect"}
    with sessions.begin() as session:  # an unsold lead of the same consumer, collected during the rotation
        session.add(Lead(id="SAMEPERSON", seller_id="s_leads", vertical="auto_loan", status=lead_status.SOLD,
                         status_rank=lead_status.RANK[lead_status.SOLD], fields=CONSUMERS[0],
                         submitted_at_ms=NOW_MS - 40 * DAY_MS, updated_at_ms=NOW_MS - 40 * DAY_MS))
    assert collect(sessions, identities=ROTATING, bundle=bundle, now_ms=NOW_MS, aged_days=30).duplicates == 1
    keys = email_keys(sessions)
    assert keys[pooled_email] == pii.identity_key(OLD.encode(), "email", pooled_email)
    assert keys[CONSUMERS[1]["email"]] == pii.identity_key(NEW.encode(), "email", CONSUMERS[1]["email"])

    assert rekey(sessions, ROTATING) == (2, 1)  # only the prospect keyed under the old key changes
    assert email_keys(sessions)[pooled_email] == pii.identity_key(NEW.encode(), "email", pooled_email)
    assert rekey(sessions, ROTATING) == (2, 0)  # running it again changes nothing

    after = import_file(sessions, bundle, [CONSUMERS[0], CONSUMERS[2]], DONE)
    assert after.imported == 1 and after.duplicates[0]["on"] == ["email", "home_phone", "ssn"]


def test_the_rekey_command_uses_the_settings_of_the_services(sessions, database_url, bundle, monkeypatch, capsys):
    import_file(sessions, bundle, CONSUMERS[:3], K0)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("LEADX_HMAC_KEY", raising=False)
    monkeypatch.delenv("DEDUP_EMAIL_PROVIDER_RULES", raising=False)
    monkeypatch.setenv("LEADX_HMAC_KEYS", f"k1:{NEW},k0:{OLD}")
    assert main(["prospects", "rekey", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"prospects": 3, "rekeyed": 3, "key_id": "k1"}
    assert main(["prospects", "rekey"]) == 0
    assert capsys.readouterr().out == "0 of 3 prospects re-keyed under HMAC key k1\n"
    assert set(email_keys(sessions).values()) == {pii.identity_key(NEW.encode(), "email", c["email"])
                                                  for c in CONSUMERS[:3]}
