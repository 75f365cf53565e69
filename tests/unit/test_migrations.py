"""Schema migrations (leadx.platform.db.schema), on SQLite and on PostgreSQL: a database that starts
empty, one that `create_all` made before the schema had revisions, and one at the first revision all
upgrade to exactly the schema `create_schema` makes on a new database (create_all, stamped at the
head), by alembic's own comparison with models.py and by every table, column, index and constraint
the database reports. Services refuse a database at any other revision, saying what to run."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    inspect,
    text,
)

from leadx.cli.main import main
from leadx.dev.tools import check_k8s
from leadx.platform.db import schema
from leadx.platform.db.engine import create_schema, make_engine
from leadx.platform.db.models import Base
from leadx.platform.db.schema import FIRST_REVISION, SchemaNotCurrent, SchemaState


def column(name: str, type_, *, null: bool = False, **options) -> Column:
    """A column as models.py's mapped_column made it: NOT NULL unless the model said `| None`."""
    return Column(name, type_, nullable=null, **options)


# models.py's tables as they were when the schema had no revisions, frozen: the databases those
# versions made with `create_all` are what `leadx db upgrade` adopts, whatever models.py says later.
BEFORE_REVISIONS = MetaData()
Table("sellers", BEFORE_REVISIONS,
      column("id", String(16), primary_key=True),
      column("name", String(200)),
      column("api_key_hash", String(64), unique=True),
      column("active", Boolean()),
      column("created_at_ms", BigInteger()),
      column("fee_percent", Float(), null=True),
      column("sells_to", String(8)))
Table("buyers", BEFORE_REVISIONS,
      column("id", String(16), primary_key=True),
      column("name", String(200)),
      column("api_key_hash", String(64), unique=True),
      column("ping_url", String(2000)),
      column("post_url", String(2000)),
      column("active", Boolean()),
      column("created_at_ms", BigInteger()),
      column("kind", String(16)),
      column("weight", Float()),
      column("time_zone", String(64)),
      column("caps", JSON(), null=True))
Table("partnerships", BEFORE_REVISIONS,
      column("buyer_id", String(16), primary_key=True),
      column("seller_id", String(16), primary_key=True),
      column("created_at_ms", BigInteger()))
Table("seller_buyer_choices", BEFORE_REVISIONS,
      column("seller_id", String(16), primary_key=True),
      column("buyer_id", String(16), primary_key=True),
      column("choice", String(8)))
Table("buyer_profiles", BEFORE_REVISIONS,
      column("id", String(16), primary_key=True),
      column("buyer_id", String(16), index=True),
      column("name", String(200)),
      column("spec", JSON()),
      column("active", Boolean()),
      column("created_at_ms", BigInteger()))
Table("contracts", BEFORE_REVISIONS,
      column("seller_id", String(16), primary_key=True),
      column("buyer_id", String(16), primary_key=True),
      column("price_cents", BigInteger()),
      column("active", Boolean()),
      column("created_at_ms", BigInteger()))
Table("leads", BEFORE_REVISIONS,
      column("id", String(10), primary_key=True),
      column("seller_id", String(16), index=True),
      column("vertical", String(64)),
      column("state", String(2)),
      column("status", String(16)),
      column("status_rank", Integer()),
      column("fields", JSON(), null=True),
      column("min_price_cents", BigInteger()),
      column("direct_buyer_id", String(16)),
      column("seller_reference", String(100)),
      column("submitted_at_ms", BigInteger()),
      column("updated_at_ms", BigInteger()),
      column("rejection_detail", Text(), null=True),
      column("rejected_at_ms", BigInteger(), null=True),
      column("probability", Float(), null=True),
      column("cluster", String(32), null=True),
      column("redrives", Integer()),
      Index("ix_leads_open_by_age", "status_rank", "updated_at_ms"),
      Index("ix_leads_seller_submitted", "seller_id", "submitted_at_ms"))
Table("auctions", BEFORE_REVISIONS,
      column("id", String(16), primary_key=True),
      column("lead_id", String(10), index=True),
      column("offered_buyers", Integer()),
      column("opened_at_ms", BigInteger()),
      column("closes_at_ms", BigInteger()))
Table("sales", BEFORE_REVISIONS,
      column("lead_id", String(10), primary_key=True),
      column("buyer_id", String(16), primary_key=True, index=True),
      column("auction_id", String(16)),
      column("sold", Boolean()),
      column("seller_id", String(16), index=True),
      column("price_cents", BigInteger()),
      column("seller_fee_cents", BigInteger()),
      column("vertical", String(64)),
      column("state", String(2)),
      column("county", String(64)),
      column("attempts", Integer()),
      column("closed_at_ms", BigInteger()),
      column("returned", Boolean()),
      Index("ix_sales_seller_closed", "seller_id", "closed_at_ms",
            postgresql_include=["sold", "price_cents", "seller_fee_cents", "returned"]),
      Index("ix_sales_closed_at", "closed_at_ms"),
      Index("ix_sales_buyer_closed", "buyer_id", "closed_at_ms",
            postgresql_include=["sold", "price_cents", "returned"]))
Table("market_days", BEFORE_REVISIONS,
      column("day", String(10), primary_key=True),
      column("vertical", String(64), primary_key=True),
      column("state", String(2), primary_key=True),
      column("county", String(64), primary_key=True),
      column("week", String(10)),
      column("month", String(10)),
      column("sales", BigInteger()),
      column("total_cents", BigInteger()),
      Index("ix_market_days_month", "month"),
      Index("ix_market_days_week", "week"))
Table("processed_events", BEFORE_REVISIONS,
      column("event_id", String(64), primary_key=True),
      column("consumer", String(64), primary_key=True),
      column("processed_at_ms", BigInteger()))
Table("buyer_postings", BEFORE_REVISIONS,
      column("lead_id", String(10), primary_key=True),
      column("buyer_id", String(16), primary_key=True),
      column("posted_at_ms", BigInteger(), index=True))
Table("buyer_duplicate_days", BEFORE_REVISIONS,
      column("buyer_id", String(16), primary_key=True),
      column("day", String(10), primary_key=True),
      column("duplicates", BigInteger()))
Table("post_attempts", BEFORE_REVISIONS,
      column("id", Integer(), primary_key=True, autoincrement=True),
      column("auction_id", String(16), index=True),
      column("lead_id", String(10), index=True),
      column("buyer_id", String(16), index=True),
      column("sent_at_ms", BigInteger()),
      column("content_type", String(100)),
      column("request_body", Text()),
      column("connects", Integer()),
      column("status", Integer(), null=True),
      column("response_body", Text()),
      column("latency_ms", Integer()),
      column("outcome", String(16)),
      column("detail", Text()))
Table("lead_returns", BEFORE_REVISIONS,
      column("lead_id", String(10), primary_key=True),
      column("buyer_id", String(16), primary_key=True, index=True),
      column("seller_id", String(16), index=True),
      column("reason", Text()),
      column("price_cents", BigInteger()),
      column("seller_fee_cents", BigInteger()),
      column("sold_at_ms", BigInteger()),
      column("returned_at_ms", BigInteger(), index=True))
Table("lead_outcomes", BEFORE_REVISIONS,
      column("lead_id", String(10), primary_key=True),
      column("buyer_id", String(16), primary_key=True),
      column("outcome", String(16), primary_key=True),
      column("seller_id", String(16)),
      column("at_ms", BigInteger()),
      column("reported_at_ms", BigInteger()),
      column("note", Text()))
Table("ledger_transactions", BEFORE_REVISIONS,
      column("id", String(32), primary_key=True),
      column("kind", String(16)),
      column("lead_id", String(10), index=True),
      column("buyer_id", String(16), index=True),
      column("seller_id", String(16), index=True),
      column("amount_cents", BigInteger()),
      column("fee_cents", BigInteger()),
      column("at_ms", BigInteger(), index=True))
Table("ledger_entries", BEFORE_REVISIONS,
      column("id", Integer(), primary_key=True, autoincrement=True),
      column("transaction_id", String(32), index=True),
      column("account", String(40)),
      column("amount_cents", BigInteger()),
      column("at_ms", BigInteger()),
      Index("ix_ledger_entries_account_at", "account", "at_ms"))
Table("account_balances", BEFORE_REVISIONS,
      column("account", String(40), primary_key=True),
      column("balance_cents", BigInteger()))
Table("ratings", BEFORE_REVISIONS,
      column("rater_id", String(16), primary_key=True),
      column("ratee_id", String(16), primary_key=True, index=True),
      column("stars", Integer()),
      column("rated_at_ms", BigInteger()))
Table("prospects", BEFORE_REVISIONS,
      column("id", String(10), primary_key=True),
      column("vertical", String(64)),
      column("seller_id", String(16), index=True),
      column("source", String(16)),
      column("source_name", String(200)),
      column("fields", JSON()),
      column("ssn_key", String(32), null=True),
      column("email_key", String(32), null=True),
      column("home_phone_key", String(32), null=True),
      column("state", String(2)),
      column("probability", Float()),
      column("propensity", Float()),
      column("cluster", String(32)),
      column("model_version", String(64)),
      column("consumer_since_ms", BigInteger()),
      column("added_at_ms", BigInteger()),
      Index("ix_prospects_vertical_probability", "vertical", "probability"),
      Index("ix_prospects_ssn", "vertical", "ssn_key"),
      Index("ix_prospects_email", "vertical", "email_key"),
      Index("ix_prospects_phone", "vertical", "home_phone_key"))
Table("list_auctions", BEFORE_REVISIONS,
      column("id", String(10), primary_key=True),
      column("vertical", String(64)),
      column("profile", JSON()),
      column("band_width", Float()),
      column("reserve_cents", BigInteger()),
      column("status", String(8)),
      column("opened_at_ms", BigInteger()),
      column("closes_at_ms", BigInteger(), index=True),
      column("closed_at_ms", BigInteger(), null=True),
      column("tie_break_seed", BigInteger()))
Table("list_members", BEFORE_REVISIONS,
      column("auction_id", String(10), primary_key=True),
      column("prospect_id", String(10), primary_key=True),
      column("probability", Float()),
      column("cluster", String(32)))
Table("list_bids", BEFORE_REVISIONS,
      column("id", Integer(), primary_key=True, autoincrement=True),
      column("auction_id", String(10), index=True),
      column("buyer_id", String(16)),
      column("scope", String(8)),
      column("target", String(64)),
      column("price_cents", BigInteger()),
      column("max_count", Integer(), null=True),
      column("max_budget_cents", BigInteger(), null=True),
      column("placed_at_ms", BigInteger()))
Table("list_awards", BEFORE_REVISIONS,
      column("auction_id", String(10), primary_key=True),
      column("prospect_id", String(10), primary_key=True),
      column("buyer_id", String(16), index=True),
      column("bid_id", Integer()),
      column("price_cents", BigInteger()),
      column("awarded_at_ms", BigInteger()),
      column("published", Boolean()),
      UniqueConstraint("prospect_id", "buyer_id", name="uq_list_awards_prospect_buyer"))


def snapshot(engine: Engine) -> dict[str, object]:
    """Everything the database reports about each table, comparable with ==."""
    found: dict[str, object] = {}
    with engine.connect() as connection:
        inspector = inspect(connection)
        for table in sorted(inspector.get_table_names()):
            found[table] = {
                "columns": [{key: str(value) for key, value in sorted(column.items())}
                            for column in inspector.get_columns(table)],
                "primary key": inspector.get_pk_constraint(table),
                "indexes": sorted(repr(sorted(_comparable(index).items())) for index in inspector.get_indexes(table)),
                "unique": sorted(repr(sorted(unique.items()))
                                 for unique in inspector.get_unique_constraints(table)),
            }
    return found


def _comparable(index: dict) -> dict:
    """An index as reflected, with the condition of a partial index as its SQL text (reflected as
    an object that compares by identity)."""
    options = index.get("dialect_options")
    if not options:
        return index
    return {**index, "dialect_options": {key: str(value) for key, value in sorted(options.items())}}


def drop_everything(engine: Engine) -> None:
    reflected = MetaData()
    reflected.reflect(engine)
    reflected.drop_all(engine)


def differences_from_models(engine: Engine) -> list:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True,
                                                               "compare_server_default": True})
        return compare_metadata(context, Base.metadata)


@pytest.fixture
def engine(database_url: str):
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def fresh(engine: Engine) -> dict[str, object]:
    """The schema `create_schema` makes on a new database; the database is left empty again."""
    create_schema(engine)
    made = snapshot(engine)
    assert schema.current_revision(engine) == schema.head_revision()
    assert differences_from_models(engine) == []
    drop_everything(engine)
    assert snapshot(engine) == {}
    return made


def test_the_history_is_one_line_from_the_first_revision():
    scripts = schema.scripts()
    assert scripts.get_bases() == [FIRST_REVISION]
    assert len(scripts.get_heads()) == 1
    for script in scripts.walk_revisions():
        assert script.path.rsplit("/", 1)[-1].startswith(f"v{script.revision}_")
    # What a service's start check reads from the files' names, without alembic, is alembic's reading.
    assert schema.known_revisions() == {script.revision for script in scripts.walk_revisions()}
    assert schema.head_revision() == scripts.get_current_head()


def test_a_service_checks_its_database_without_importing_alembic(tmp_path):
    """Alembic's import was 60 to 140 ms of every service's start; only changing the schema needs it."""
    url = f"sqlite:///{tmp_path / 'leadx.db'}"
    check = ("import sys; from leadx.platform.db.engine import make_engine;"
             "from leadx.platform.db.schema import exit_unless_current;"
             f"exit_unless_current(make_engine({url!r}), 'probe');"
             "print(sorted(name for name in sys.modules if name.split('.')[0] in ('alembic', 'mako')))")
    engine = make_engine(url)
    create_schema(engine)
    engine.dispose()
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout.strip()) == (0, "[]"), result.stderr


@pytest.mark.parametrize("start", ["empty", "create_all before revisions", "first revision"])
def test_every_start_upgrades_to_the_fresh_schema(engine, fresh, start):
    if start == "create_all before revisions":
        BEFORE_REVISIONS.create_all(engine)
    elif start == "first revision":
        assert schema.upgrade(engine, FIRST_REVISION).after == FIRST_REVISION
    if start != "empty":
        with engine.begin() as connection:  # the data a database holds stays through the upgrade
            connection.execute(BEFORE_REVISIONS.tables["sellers"].insert().values(
                id="s1", name="kept", api_key_hash="h1", active=True, created_at_ms=1, sells_to="all"))

    upgraded = schema.upgrade(engine)

    assert upgraded.after == schema.head_revision()
    assert upgraded.adopted == (start == "create_all before revisions")
    assert differences_from_models(engine) == []
    assert snapshot(engine) == fresh
    schema.check_schema(engine)
    if start != "empty":
        with engine.connect() as connection:
            assert connection.execute(text("select name from sellers")).scalars().all() == ["kept"]
    again = schema.upgrade(engine)
    assert (again.before, again.after, again.adopted) == (upgraded.after, upgraded.after, False)


def test_the_first_revision_is_what_create_all_made_before_revisions(engine):
    BEFORE_REVISIONS.create_all(engine)
    before_revisions = snapshot(engine)
    drop_everything(engine)
    schema.upgrade(engine, FIRST_REVISION)
    first = snapshot(engine)
    assert first.pop("alembic_version")
    assert first == before_revisions


def test_services_refuse_a_database_not_at_their_revision(engine):
    with pytest.raises(SchemaNotCurrent, match=r"no leadx schema: run `leadx db upgrade`"):
        schema.check_schema(engine)
    with pytest.raises(SystemExit, match=r"^ledger: the database has no leadx schema: run `leadx db upgrade`"):
        schema.exit_unless_current(engine, "ledger")

    BEFORE_REVISIONS.create_all(engine)
    with pytest.raises(SchemaNotCurrent, match=r"no schema revision .* run `leadx db upgrade` to adopt"):
        schema.check_schema(engine)
    with pytest.raises(SchemaNotCurrent, match=r"no schema revision"):
        create_schema(engine)  # only an upgrade changes an existing schema

    schema.upgrade(engine)
    schema.check_schema(engine)
    create_schema(engine)  # at the head already: nothing to do
    with engine.begin() as connection:
        connection.execute(text("update alembic_version set version_num = 'f00d'"))
    with pytest.raises(SchemaNotCurrent, match=r"at revision f00d, which this leadx does not know .* newer leadx"):
        schema.check_schema(engine)
    with pytest.raises(SchemaNotCurrent, match=r"f00d"):
        schema.upgrade(engine)
    assert schema.current_revision(engine) == "f00d"


def test_an_older_known_revision_is_sent_to_the_upgrade(monkeypatch):
    monkeypatch.setattr(schema, "head_revision", lambda: "0002")
    monkeypatch.setattr(schema, "known_revisions", lambda: {"0001", "0002"})
    assert schema.problem(SchemaState("0002", frozenset({"leads"}))) is None
    assert schema.problem(SchemaState("0001", frozenset({"leads"}))) == (
        "the database schema is at revision 0001 and this leadx needs 0002: run `leadx db upgrade`")


def test_adoption_refuses_tables_the_first_revision_does_not_describe(engine):
    BEFORE_REVISIONS.create_all(engine)
    with engine.begin() as connection:
        connection.execute(text("alter table leads drop column redrives"))
        connection.execute(text("drop table ratings"))
    with pytest.raises(SchemaNotCurrent, match=r"lacks what revision 0001 has \(leads\.redrives, ratings\)"):
        schema.upgrade(engine)
    assert schema.current_revision(engine) is None


def test_concurrent_upgrades_and_fresh_schemas_wait_for_each_other(database_url):
    errors: list[BaseException] = []

    def prepare(make) -> None:
        engine = make_engine(database_url)
        try:
            make(engine)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=prepare, args=(make,))
               for make in (schema.upgrade, create_schema, schema.upgrade, create_schema)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    engine = make_engine(database_url)
    schema.check_schema(engine)
    assert differences_from_models(engine) == []
    engine.dispose()


def test_leadx_db_upgrade_and_current_as_an_operator_runs_them(engine, database_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    head = schema.head_revision()
    assert main(["db", "current"]) == 1
    out, err = capsys.readouterr()
    assert out == f"database revision none; this leadx's revision {head}\n"
    assert err == "leadx: the database has no leadx schema: run `leadx db upgrade` to create it\n"

    BEFORE_REVISIONS.create_all(engine)
    assert main(["seller", "create", "early"]) == 2  # a command refuses a schema it does not know
    assert "run `leadx db upgrade` to adopt" in capsys.readouterr().err
    assert main(["db", "upgrade"]) == 0
    assert capsys.readouterr().out == f"schema had no revision: adopted at the first, upgraded to {head}\n"
    assert main(["db", "upgrade"]) == 0
    assert capsys.readouterr().out == f"schema at revision {head}: nothing to do\n"
    assert main(["db", "current"]) == 0
    assert capsys.readouterr().out == f"database revision {head}; this leadx's revision {head}\n"
    assert main(["db", "upgrade", "--revision", "nonesuch"]) == 2
    assert "cannot upgrade to revision nonesuch" in capsys.readouterr().err


def test_leadx_db_upgrade_creates_the_schema_of_an_empty_database(engine, database_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert main(["db", "upgrade"]) == 0
    assert capsys.readouterr().out == f"schema upgraded from nothing to revision {schema.head_revision()}\n"
    assert differences_from_models(engine) == []


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_every_deployment_using_sql_upgrades_its_schema_before_it_starts(overlay):
    docs = check_k8s.render(check_k8s.K8S / "overlays" / overlay)
    using_sql = set()
    for deployment in (doc for doc in docs if doc["kind"] == "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        service = pod["containers"][0]
        if not any(variable["name"] == "DATABASE_URL" for variable in service.get("env", [])):
            assert not pod.get("initContainers")
            continue
        using_sql.add(deployment["metadata"]["name"])
        [upgrade] = pod["initContainers"]
        assert upgrade["command"] == ["leadx", "db", "upgrade"]
        assert upgrade["image"] == service["image"]
        assert upgrade["env"] == [variable for variable in service["env"] if variable["name"] == "DATABASE_URL"]
        assert upgrade["securityContext"]["readOnlyRootFilesystem"] is True
        assert {"cpu", "memory"} <= set(upgrade["resources"]["limits"])
    assert using_sql == {f"leadx-{name}" for name in ("intake", "dedup", "auction", "delivery", "ledger", "portal")}


def test_a_new_revision_follows_the_head_and_upgrades(tmp_path, monkeypatch, database_url):
    copy = tmp_path / "migrations"
    shutil.copytree(schema.MIGRATIONS, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(schema, "MIGRATIONS", copy)
    schema.scripts.cache_clear()
    try:
        head = schema.head_revision()
        written = schema.new_revision("buyers get a credit limit")
        number = f"{int(head) + 1:04d}"
        assert written == copy / "versions" / f"v{number}_buyers_get_a_credit_limit.py"
        assert f'down_revision = "{head}"' in written.read_text()  # models.py unchanged: nothing to do
        assert schema.head_revision() == number
        engine = make_engine(database_url)
        assert schema.upgrade(engine).after == number
        engine.dispose()
    finally:
        schema.scripts.cache_clear()


def test_existing_sales_take_their_leads_submission_time_when_it_is_added(engine):
    assert schema.upgrade(engine, "0006").after == "0006"
    with engine.begin() as connection:
        connection.execute(text(
            "insert into leads (id, seller_id, vertical, state, status, status_rank, min_price_cents, direct_buyer_id,"
            " seller_reference, submitted_at_ms, updated_at_ms, redrives)"
            " values ('LEAD000001', 's1', 'auto_loan', 'NY', 'sold', 9, 0, '', '', 1234, 5678, 0)"))
        for lead_id in ("LEAD000001", "LEAD000002"):  # the second's lead row is not there
            connection.execute(text(
                "insert into sales (lead_id, buyer_id, auction_id, sold, seller_id, price_cents, seller_fee_cents,"
                " vertical, state, county, attempts, closed_at_ms, returned)"
                f" values ('{lead_id}', 'b1', 'A1', true, 's1', 1000, 100, 'auto_loan', 'NY', '', 1, 9999, false)"))
    schema.upgrade(engine)
    with engine.connect() as connection:
        assert dict(connection.execute(text("select lead_id, submitted_at_ms from sales")).all()) == {
            "LEAD000001": 1234, "LEAD000002": 0}
