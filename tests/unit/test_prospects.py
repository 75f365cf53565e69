"""The prospect pool: CSV files read and checked like leads, duplicates by line, scores stored, unsold
and aged leads collected once (SQL on SQLite and PostgreSQL), and `leadx prospects` as an operator
runs it."""

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
from leadx.platform.db.models import Lead, Prospect, Sale
from leadx.platform.utc_days import DAY_MS
from leadx.prospects.pool import (
    CsvRow,
    Identities,
    Match,
    Refused,
    SeenConsumers,
    batches,
    check_row,
    collect,
    import_rows,
    pool_stats,
    quantile_offsets,
    read_csv,
)
from leadx.prospects import pool as prospects
from leadx.scoring.registry import load_prior

SECRET = b"0123456789abcdef-prospects"
IDENTITIES = Identities(SECRET)
VERTICALS = load_verticals()
AUTO_LOAN = VERTICALS["auto_loan"]
FIELDS = [f.name for f in AUTO_LOAN.fields]
RULES = load_rulebook(PACKAGED_RULES, VERTICALS).rules_for("auto_loan", "s_any")
NOW_MS = int(time.time() * 1000)
# Simulated consumers of six weeks ago: they pass intake's checks, as real leads do.
CONSUMERS = [{k: str(v) for k, v in lead.fields.items() if k != "vertical"}
             for lead in simulate(12, 21, NOW_MS - 42 * DAY_MS)]


@pytest.fixture(scope="module")
def bundle():
    return load_prior()


def csv_text(rows: list[dict], header: list[str] = FIELDS) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([row.get(name, "") for name in header] for row in rows)
    return out.getvalue()


def read(text: str):
    return read_csv(io.StringIO(text, newline=""), AUTO_LOAN)


# ---------------------------------------------------------------------- reading a file (pure)

def test_rows_are_numbered_by_the_line_they_start_on_with_the_header_as_line_1():
    text = ("first_name,last_name,address\n"
            "Ann,Lee,1 Oak St\n"
            "\n"
            ",,\n"
            'Bob,Roe,"2 Pine St\nApt 4"\n'
            "Cy,Day,3 Elm St\n")
    rows = list(read(text).rows)
    assert [(r.line, r.values) for r in rows] == [
        (2, {"first_name": "Ann", "last_name": "Lee", "address": "1 Oak St"}),
        (5, {"first_name": "Bob", "last_name": "Roe", "address": "2 Pine St\nApt 4"}),
        (7, {"first_name": "Cy", "last_name": "Day", "address": "3 Elm St"})]


def test_the_header_names_fields_in_any_case_and_other_columns_are_ignored():
    read_file = read(" First_Name ,NOTES,,last_name\nAnn,likes cars,x,Lee\n")
    assert read_file.columns == ("first_name", "notes", "", "last_name")
    assert read_file.ignored == ("notes", "column 3 (no name)")
    assert [r.values for r in read_file.rows] == [{"first_name": "Ann", "last_name": "Lee"}]


def test_a_row_with_more_or_fewer_values_than_the_header_is_rejected_as_malformed():
    rows = list(read("first_name,last_name\nAnn\nBob,Roe,extra\n").rows)
    checked = [check_row(AUTO_LOAN, row, RULES) for row in rows]
    assert [(c.line, c.errors[0]["code"], c.errors[0]["field"]) for c in checked] == [
        (2, "ROW_MALFORMED", None), (3, "ROW_MALFORMED", None)]
    assert checked[1].errors[0]["message"] == "line 3 has 3 values; the header row names 2"


@pytest.mark.parametrize("text, message", [
    ("", "the file is empty"),
    ("\n\n", "the file is empty"),
    ('{"first_name": "Ann", "last_name": "Lee"}\n', "line 1 is not a header row"),
    ("first_name;last_name;email\nAnn;Lee;a@example.com\n", "line 1 is not a header row"),
    ("Ann,Lee,ann@example.com\n", "line 1 is not a header row"),
    ("email,first_name,Email\n", "the header row names email more than once"),
    ('first_name,"last_name\n', "line 1 is not CSV"),
])
def test_a_file_without_a_usable_header_row_is_refused(text, message):
    with pytest.raises(Refused, match=message):
        read(text)


@pytest.mark.parametrize("text, message", [
    ('first_name,last_name\nAnn,Lee\nBob,"Roe\n', "line 3 is not CSV"),
    ('first_name,last_name\nAnn,Lee\n\nBob,"R"oe\n', "line 4 is not CSV"),
    ("first_name,last_name\nAnn,Lee\nBob,R\0e\n", "line 3 holds a NUL character"),
])
def test_a_file_that_stops_being_csv_halfway_is_refused_when_read_there(text, message):
    rows = read(text).rows
    assert next(rows).line == 2
    with pytest.raises(Refused, match=message):
        list(rows)


def test_a_file_that_is_not_utf8_text_is_refused(tmp_path):
    path = tmp_path / "list.csv"
    path.write_bytes(csv_text([CONSUMERS[0]]).encode("utf-16"))
    with open(path, encoding="utf-8-sig", newline="") as lines, pytest.raises(Refused, match="not UTF-8 text"):
        read_csv(lines, AUTO_LOAN)


# ---------------------------------------------------------------------- rows and consumers (pure)

def row(line: int, **changes) -> CsvRow:
    return CsvRow(line, CONSUMERS[0] | changes)


def test_a_good_row_is_stored_as_intake_stores_a_lead_normalised():
    checked = check_row(AUTO_LOAN, row(2, ssn="123-45-6789", state="ny", zip="10001",
                                       home_phone="(212) 555-0100", work_phone=""), RULES)
    assert checked.ok and checked.line == 2
    assert checked.fields["ssn"] == "123456789" and checked.fields["state"] == "NY"
    assert checked.fields["home_phone"] == "2125550100" and "work_phone" not in checked.fields


@pytest.mark.parametrize("changes, expected", [
    ({"email": ""}, [("FIELD_MISSING", "email")]),
    ({"zip": "10001", "state": "CA"}, [("ZIP_STATE_MISMATCH", "state")]),
    ({"zip": "00000"}, [("ZIP_UNKNOWN", "zip")]),
    ({"first_name": "R2-D2", "months_employed": "many"}, [("FIELD_INVALID", "months_employed"),
                                                          ("FIELD_INVALID", "first_name")]),
])
def test_a_bad_row_gets_the_errors_intake_would_answer(changes, expected):
    checked = check_row(AUTO_LOAN, row(9, **changes), RULES)
    assert not checked.ok
    assert [(e["code"], e["field"]) for e in checked.errors] == expected
    assert all(e["message"] for e in checked.errors)


def test_a_phone_of_another_state_is_a_warning_unless_intake_is_set_to_refuse_it():
    other_state = row(4, zip="10001", state="NY", home_phone="3125550100")  # a Chicago number
    assert check_row(AUTO_LOAN, other_state, RULES).warnings[0]["code"] == "PHONE_AREA_MISMATCH"
    refused = check_row(AUTO_LOAN, other_state, RULES, phone_area_must_match=True)
    assert [(e["code"], e["field"]) for e in refused.errors] == [("FIELD_INVALID", "home_phone")]


def test_identity_keys_are_the_ones_dedup_computes():
    fields = CONSUMERS[0] | {"email": "Ann.Lee+cars@googlemail.com"}
    assert IDENTITIES.of(fields) == pii.identity_keys(SECRET, fields)
    assert IDENTITIES.of(fields)["email"] == pii.identity_key(SECRET, "email", "annlee@gmail.com")
    assert Identities(SECRET, email_provider_rules=False).of(fields)["email"] != IDENTITIES.of(fields)["email"]


def test_a_consumer_is_recognised_by_any_identity_shared_with_an_earlier_row():
    seen = SeenConsumers()
    assert seen.match({"ssn": "a", "email": "b"}) is None
    seen.add({"ssn": "a", "email": "b"}, 2)
    seen.add({"ssn": "c", "email": "d", "home_phone": "e"}, 3)
    seen.add({"ssn": "a", "home_phone": "f"}, 4)  # a duplicate of line 2: keeps line 2 as the first
    assert seen.match({"email": "b", "home_phone": "x"}) == Match(2, ("email",))
    assert seen.match({"ssn": "a", "home_phone": "f"}) == Match(2, ("ssn",))
    assert seen.match({"email": "d", "home_phone": "f"}) == Match(3, ("email",))
    assert seen.match({"ssn": "b"}) is None  # a key counts for its own kind only


def test_quantiles_sit_at_their_rank_and_batches_cut_a_stream():
    assert quantile_offsets(0) == {}
    assert set(quantile_offsets(1).values()) == {0}
    assert quantile_offsets(11) == {"min": 0, "p10": 1, "p25": 2, "median": 5, "p75": 7, "p90": 9, "max": 10}
    assert list(batches(iter(range(5)), 2)) == [[0, 1], [2, 3], [4]]


# ---------------------------------------------------------------------- import (SQL)

def new_seller(sessions) -> str:
    with sessions() as session:
        return accounts.create_seller(session, "list seller").id


def run_import(sessions, bundle, text: str, seller_id: str, name: str = "list.csv"):
    with sessions.begin() as session:
        return import_rows(session, read(text), vertical=AUTO_LOAN, seller_id=seller_id, source_name=name,
                           rules=RULES, identities=IDENTITIES, bundle=bundle, now_ms=NOW_MS)


def pool(sessions) -> list[Prospect]:
    with sessions() as session:
        return list(session.scalars(select(Prospect).order_by(Prospect.consumer_since_ms, Prospect.id)))


def test_an_import_stores_good_rows_with_their_scores_and_reports_the_rest_by_line(sessions, bundle):
    seller_id = new_seller(sessions)
    first = run_import(sessions, bundle, csv_text([CONSUMERS[5]]), seller_id, "earlier.csv")
    assert first.imported == 1
    (earlier,) = pool(sessions)

    same_ssn = CONSUMERS[0] | {"email": "someone.else@example.com", "home_phone": CONSUMERS[1]["home_phone"]}
    rows = [CONSUMERS[0],                                   # line 2: good
            CONSUMERS[1] | {"email": ""},                   # line 3: a required field missing
            CONSUMERS[2] | {"zip": "10001", "state": "CA"},  # line 4: the ZIP is in another state
            CONSUMERS[3] | {"zip": "00000"},                # line 5: no such ZIP
            CONSUMERS[4],                                   # line 6: good
            same_ssn,                                       # line 7: line 2's consumer, by SSN
            CONSUMERS[5] | {"first_name": "Anna"}]          # line 8: already in the pool
    report = run_import(sessions, bundle, csv_text(rows, FIELDS + ["notes"]), seller_id)

    assert (report.rows, report.imported) == (7, 2)
    assert [(r["line"], [(e["code"], e["field"]) for e in r["errors"]]) for r in report.rejected] == [
        (3, [("FIELD_MISSING", "email")]), (4, [("ZIP_STATE_MISMATCH", "state")]), (5, [("ZIP_UNKNOWN", "zip")])]
    assert report.duplicates == [
        {"line": 7, "duplicate_of": {"line": 2}, "on": ["ssn"]},
        {"line": 8, "duplicate_of": {"prospect": earlier.id}, "on": ["email", "home_phone", "ssn"]}]
    assert report.ignored_columns == ["notes"] and report.model_version == bundle.version
    assert json.loads(json.dumps(report.as_dict()))["rejected"][0]["line"] == 3

    stored = [p for p in pool(sessions) if p.id != earlier.id]
    assert sorted(p.fields["email"] for p in stored) == sorted([CONSUMERS[0]["email"], CONSUMERS[4]["email"]])
    expected = {c["email"]: s for c, s in zip([CONSUMERS[0], CONSUMERS[4]],
                                              bundle.score([CONSUMERS[0], CONSUMERS[4]], [NOW_MS] * 2, [NOW_MS] * 2),
                                              strict=True)}
    for prospect in stored:
        checked = check_row(AUTO_LOAN, CsvRow(2, prospect.fields), RULES)
        assert checked.ok and checked.fields == prospect.fields
        keys = pii.identity_keys(SECRET, prospect.fields)
        assert (prospect.ssn_key, prospect.email_key, prospect.home_phone_key) == (
            keys["ssn"], keys["email"], keys["home_phone"])
        assert (prospect.vertical, prospect.seller_id, prospect.source, prospect.source_name) == (
            "auto_loan", seller_id, "import", "list.csv")
        assert prospect.state == prospect.fields["state"] and len(prospect.id) == 10
        assert prospect.consumer_since_ms == prospect.added_at_ms == NOW_MS
        score = expected[prospect.fields["email"]]
        assert 0 <= prospect.probability <= 1 and prospect.probability == pytest.approx(score.direct_response)
        assert 0 <= prospect.propensity <= 1 and prospect.propensity == pytest.approx(score.probability)
        assert prospect.cluster in bundle.clusters.ids and prospect.cluster == score.cluster
        assert prospect.model_version == bundle.version


def test_a_file_is_stored_whole_or_not_at_all(sessions, bundle, monkeypatch):
    monkeypatch.setattr(prospects, "BATCH", 2)  # the first rows are written before the break is read
    seller_id = new_seller(sessions)
    text = csv_text(CONSUMERS[:5]) + 'Bob,"Roe\n'
    with pytest.raises(Refused, match="line 7 is not CSV"):
        run_import(sessions, bundle, text, seller_id)
    assert pool(sessions) == []
    assert run_import(sessions, bundle, csv_text(CONSUMERS[:5]), seller_id).imported == 5


def test_an_import_needs_a_seller_that_exists(sessions, bundle):
    with pytest.raises(Refused, match="no seller s_nobody"):
        run_import(sessions, bundle, csv_text(CONSUMERS[:1]), "s_nobody")
    assert pool(sessions) == []


# ---------------------------------------------------------------------- collect (SQL)

def add_lead(session, lead_id: str, fields: dict | None, status: str, age_days: float, unsold: bool = False,
             seller_id: str = "s_leads") -> None:
    submitted = NOW_MS - int(age_days * DAY_MS)
    session.add(Lead(id=lead_id, seller_id=seller_id, vertical="auto_loan", state=(fields or {}).get("state", ""),
                     status=status, status_rank=lead_status.RANK[status], fields=fields, submitted_at_ms=submitted,
                     updated_at_ms=submitted))
    if status in (lead_status.SOLD, lead_status.UNSOLD, lead_status.RETURNED):
        session.add(Sale(lead_id=lead_id, buyer_id="" if unsold else "b_1", auction_id=f"A{lead_id}", sold=not unsold,
                         seller_id=seller_id, price_cents=0 if unsold else 2500, seller_fee_cents=0,
                         vertical="auto_loan", state="NY", attempts=1, closed_at_ms=submitted + 60_000,
                         returned=status == lead_status.RETURNED))


def market(sessions, bundle) -> None:
    """Leads of every kind, and one consumer already imported."""
    with sessions.begin() as session:
        add_lead(session, "UNSOLDNEW1", CONSUMERS[0], lead_status.UNSOLD, 2, unsold=True)
        add_lead(session, "UNSOLDOLD1", CONSUMERS[1], lead_status.UNSOLD, 40, unsold=True)
        add_lead(session, "SOLDNEW001", CONSUMERS[2], lead_status.SOLD, 29)
        add_lead(session, "SOLDOLD001", CONSUMERS[3], lead_status.SOLD, 31)
        add_lead(session, "SOLDOLD002", CONSUMERS[4], lead_status.SOLD, 60)
        # SOLDOLD001's consumer again (by email), later: the earlier lead has it, whatever the ids' order.
        add_lead(session, "SAMEPERSON", CONSUMERS[3] | {"ssn": "123456789"}, lead_status.SOLD, 30.5)
        add_lead(session, "NOFIELDS01", None, lead_status.SOLD, 50)
        add_lead(session, "RETURNED01", CONSUMERS[6], lead_status.RETURNED, 50)
        add_lead(session, "DUPLICATE1", CONSUMERS[7], lead_status.DUPLICATE, 50)
        add_lead(session, "REJECTED01", CONSUMERS[8], lead_status.REJECTED, 50)
        add_lead(session, "INFLIGHT01", CONSUMERS[9], lead_status.IN_AUCTION, 50)
        add_lead(session, "IMPORTED01", CONSUMERS[10], lead_status.SOLD, 50)
    run_import(sessions, bundle, csv_text([CONSUMERS[10]]), new_seller(sessions))


def test_collect_adds_unsold_and_aged_leads_once_with_their_scores(sessions, bundle, monkeypatch):
    monkeypatch.setattr(prospects, "BATCH", 2)  # several batches of each kind
    market(sessions, bundle)
    report = collect(sessions, identities=IDENTITIES, bundle=bundle, now_ms=NOW_MS + 1, aged_days=30)
    assert report.as_dict() == {"model_version": bundle.version, "unsold": 2, "aged": 2, "duplicates": 2,
                                "without_fields": 1}

    collected = {p.id: p for p in pool(sessions) if p.source != "import"}
    assert {i: p.source for i, p in collected.items()} == {
        "UNSOLDNEW1": "unsold", "UNSOLDOLD1": "unsold", "SOLDOLD001": "aged", "SOLDOLD002": "aged"}
    with sessions() as session:
        leads = {lead.id: lead for lead in session.scalars(select(Lead).where(Lead.id.in_(collected)))}
    scores = bundle.score([leads[i].fields for i in collected], [leads[i].submitted_at_ms for i in collected],
                          [NOW_MS + 1] * len(collected))
    for (lead_id, prospect), score in zip(collected.items(), scores, strict=True):
        lead = leads[lead_id]
        assert (prospect.seller_id, prospect.vertical, prospect.fields) == ("s_leads", "auto_loan", lead.fields)
        assert prospect.email_key == pii.identity_key(SECRET, "email", lead.fields["email"])
        assert prospect.consumer_since_ms == lead.submitted_at_ms and prospect.added_at_ms == NOW_MS + 1
        assert prospect.probability == pytest.approx(score.direct_response) and 0 <= prospect.probability <= 1
        assert prospect.cluster == score.cluster and prospect.model_version == bundle.version

    again = collect(sessions, identities=IDENTITIES, bundle=bundle, now_ms=NOW_MS + 2, aged_days=30)
    assert (again.unsold, again.aged) == (0, 0)
    assert len(pool(sessions)) == 5
    # Younger leads age: collected as soon as they are old enough.
    later = collect(sessions, identities=IDENTITIES, bundle=bundle, now_ms=NOW_MS + 2, aged_days=28.5)
    assert (later.unsold, later.aged) == (0, 1)
    assert {p.id for p in pool(sessions) if p.source == "aged"} == {"SOLDOLD001", "SOLDOLD002", "SOLDNEW001"}


def test_pool_stats_count_per_vertical_source_and_cluster_with_probability_quantiles(sessions, bundle):
    with sessions() as session:
        assert pool_stats(session) == {"prospects": 0, "verticals": {}}
    market(sessions, bundle)
    run_import(sessions, bundle, csv_text(CONSUMERS[:2] + CONSUMERS[5:6] + CONSUMERS[11:]), new_seller(sessions))
    collect(sessions, identities=IDENTITIES, bundle=bundle, now_ms=NOW_MS, aged_days=30)
    everyone = pool(sessions)
    with sessions() as session:
        stats = pool_stats(session)
    loans = stats["verticals"]["auto_loan"]
    assert stats["prospects"] == loans["prospects"] == len(everyone) == 7
    assert loans["sources"] == {"aged": 2, "import": 5}  # the unsold leads' consumers were imported first
    assert sum(loans["clusters"].values()) == 7 and set(loans["clusters"]) <= set(bundle.clusters.ids)
    ranked = sorted(p.probability for p in everyone)
    assert loans["probability"] == {label: pytest.approx(ranked[offset])
                                    for label, offset in quantile_offsets(7).items()}


# ---------------------------------------------------------------------- the commands

@pytest.fixture
def operator(database_url, monkeypatch):
    """The environment `leadx prospects` runs in."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("LEADX_HMAC_KEY", SECRET.decode())
    for name in ("SCORING_MODELS", "INTAKE_RULES_DIR", "INTAKE_PHONE_AREA_MUST_MATCH", "DEDUP_EMAIL_PROVIDER_RULES"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def cli_seller(capsys) -> str:
    assert main(["seller", "create", "list seller", "--json"]) == 0
    return json.loads(capsys.readouterr().out)["id"]


def test_import_then_collect_and_stats_from_the_command_line(operator, tmp_path, capsys, bundle):
    seller_id = cli_seller(capsys)
    path = tmp_path / "customers.csv"
    path.write_text(csv_text(CONSUMERS[:3] + [CONSUMERS[1] | {"zip": "00000"}, CONSUMERS[0]]))
    assert main(["prospects", "import", str(path), "--seller", seller_id, "--vertical", "auto_loan", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["file"], summary["rows"], summary["imported"]) == ("customers.csv", 5, 3)
    assert [r["line"] for r in summary["rejected"]] == [5] and summary["duplicates"][0]["line"] == 6

    assert main(["prospects", "import", str(path), "--seller", seller_id, "--vertical", "auto_loan"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("customers.csv: 0 of 5 rows imported into the auto_loan pool")
    assert "line 5: ZIP_UNKNOWN zip: zip 00000 is not a US ZIP code" in text
    assert "line 2: the consumer of prospect " in text and "line 6: the consumer of line 2" in text

    assert main(["prospects", "collect", "--aged-days", "30", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"model_version": bundle.version, "unsold": 0, "aged": 0,
                                                   "duplicates": 0, "without_fields": 0}
    assert main(["prospects", "stats", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["prospects"] == 3 and stats["verticals"]["auto_loan"]["sources"] == {"import": 3}
    assert main(["prospects", "stats"]) == 0
    shown = capsys.readouterr().out
    assert "auto_loan: 3 prospects" in shown and "median" in shown


@pytest.mark.parametrize("content, argv, message", [
    (None, ["--vertical", "boat_loan"], "no vertical 'boat_loan'; the verticals are auto_insurance, auto_loan"),
    (None, ["--seller", "s_nobody"], "no seller s_nobody; nothing was imported"),
    (b"", [], "customers.csv: the file is empty"),
    (b'{"leads": [1, 2]}', [], "customers.csv: line 1 is not a header row"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\xff\xfe", [], "customers.csv: the file is not UTF-8 text"),
    ("missing", [], "cannot read"),
    ("folder", [], "cannot read"),
])
def test_a_bad_import_is_a_clear_error_with_exit_status_2(operator, tmp_path, capsys, content, argv, message):
    seller_id = cli_seller(capsys)
    path = tmp_path / "customers.csv"
    if content == "folder":
        path.mkdir()
    elif content != "missing":
        path.write_bytes(csv_text(CONSUMERS[:2]).encode() if content is None else content)
    options = {"--seller": seller_id, "--vertical": "auto_loan"} | dict(zip(argv[::2], argv[1::2], strict=True))
    assert main(["prospects", "import", str(path), *[x for pair in options.items() for x in pair]]) == 2
    out, err = capsys.readouterr()
    assert message in err and "Traceback" not in err and out == ""
    assert main(["prospects", "stats", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["prospects"] == 0


def test_the_commands_need_the_identity_secret(operator, tmp_path, capsys):
    operator.delenv("LEADX_HMAC_KEY")
    assert main(["prospects", "collect"]) == 2
    assert "LEADX_HMAC_KEY" in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:
        main(["prospects", "collect", "--aged-days", "soon"])
    assert refused.value.code == 2

