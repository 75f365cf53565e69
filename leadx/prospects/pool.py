"""The prospect pool (docs/scoring.md#the-prospect-pool): the consumers that customer lists are sold from.

Three sources feed it: leads that went unsold, aged leads (older than a number of days, sold or
not: they are sold again as aged leads), and the customer lists a seller imports from a CSV file.
A consumer is in a vertical's pool once: a row or lead whose identity keys (SSN, email, home
phone, keyed with HMAC exactly as dedup keys them) match a prospect already there is a duplicate
and is not added. Every prospect is stored with its scores from the model bundle of the moment it
was added; its `probability` is that of answering a direct offer, which a list sale is.

A prospect's identity keys are made under the current HMAC key. While a rotation of the key lists
others, a consumer pooled under one of them is still found (its keys under every listed key are
looked up); `rekey` recomputes the pool's keys under the current key from the fields it keeps, so
the old key can be dropped: the pool has no window after which its keys stop mattering.

The rules (reading a CSV file, checking a row as intake checks a lead, recognising a consumer seen
earlier in the same file) are pure; the SQL functions below them apply them to the pool.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice

from sqlalchemy import exists, func, insert, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from leadx.leads import pii
from leadx.leads import status as lead_status
from leadx.leads.verticals import Rule, Vertical, verify
from leadx.platform.config import HmacKeyring
from leadx.platform.db.models import Lead, Prospect, Sale, Seller
from leadx.platform.ids import new_lead_id
from leadx.platform.utc_days import DAY_MS
from leadx.scoring.models import ModelBundle, Score

UNSOLD, AGED, IMPORT = "unsold", "aged", "import"
BATCH = 1000  # rows checked, scored and written together: one model call per batch
_IN_CHUNK = 500  # identity keys per IN (...) list
# Aged leads that are resold: those that reached the market and were not sent back by a buyer.
AGED_STATUSES = (lead_status.SOLD, lead_status.UNSOLD)
QUANTILES = (("min", 0.0), ("p10", 0.1), ("p25", 0.25), ("median", 0.5), ("p75", 0.75), ("p90", 0.9),
             ("max", 1.0))
_KEY_COLUMNS = {pii.SSN: Prospect.ssn_key, pii.EMAIL: Prospect.email_key, pii.HOME_PHONE: Prospect.home_phone_key}


class Refused(ValueError):
    """Input that cannot be used at all (a file that is not CSV, an unknown seller): nothing is stored."""


# ---------------------------------------------------------------------- CSV files (pure)

@dataclass(frozen=True)
class CsvRow:
    line: int  # where the row starts in the file; the header is line 1
    values: dict[str, str]  # the vertical's fields only, by the header's names
    problem: str = ""  # set when the row cannot be read as one consumer


@dataclass(frozen=True)
class CsvFile:
    columns: tuple[str, ...]
    ignored: tuple[str, ...]  # header names that are not fields of the vertical
    rows: Iterator[CsvRow]  # read lazily: a file that stops being CSV halfway raises Refused then


def read_csv(lines: Iterable[str], vertical: Vertical) -> CsvFile:
    """A CSV file whose first line is a header row naming the vertical's fields (any order, any
    case; other columns are ignored). `lines` is a file opened with newline="" so quoted values may
    hold line breaks. Raises Refused for a file without such a header."""
    reader = csv.reader(lines, strict=True)
    header = _next(reader, 1)
    if header is None or not any(cell.strip() for cell in header):
        raise Refused("the file is empty: its first line must be a header row naming the fields")
    columns = tuple(cell.strip().lower() for cell in header)
    known = [f.name for f in vertical.fields]
    if not set(known) & set(columns):
        raise Refused(f"line 1 is not a header row: it names none of the {vertical.name} fields "
                      f"({', '.join(known)}); a prospect file is comma-separated, with a header row first")
    twice = sorted({name for name in columns if name and columns.count(name) > 1})
    if twice:
        raise Refused(f"the header row names {', '.join(twice)} more than once")
    ignored = tuple(name or f"column {i} (no name)" for i, name in enumerate(columns, start=1) if name not in known)
    return CsvFile(columns, ignored, _rows(reader, columns, frozenset(known)))


def _next(reader, line: int) -> list[str] | None:
    """The row starting at `line`; a file that stops being text or CSV there is refused whole, as
    broken quoting shifts every row after it."""
    try:
        cells = next(reader, None)
    except UnicodeDecodeError:
        raise Refused("the file is not UTF-8 text, as a CSV file of prospects must be") from None
    except csv.Error as exc:
        raise Refused(f"line {line} is not CSV: {exc}") from None
    if cells is not None and any("\0" in cell for cell in cells):
        raise Refused(f"line {line} holds a NUL character: the file is not a text CSV file")
    return cells


def _rows(reader, columns: tuple[str, ...], known: frozenset[str]) -> Iterator[CsvRow]:
    line = reader.line_num + 1
    while (cells := _next(reader, line)) is not None:
        start, line = line, reader.line_num + 1
        if not any(cell.strip() for cell in cells):
            continue  # a blank line, or a spreadsheet's empty row
        if len(cells) != len(columns):
            yield CsvRow(start, {}, f"line {start} has {len(cells)} values; the header row names {len(columns)}")
            continue
        yield CsvRow(start, {name: cell.strip() for name, cell in zip(columns, cells, strict=True) if name in known})


# ---------------------------------------------------------------------- rows and consumers (pure)

@dataclass(frozen=True)
class CheckedRow:
    line: int
    fields: dict[str, str]  # normalised, the vertical's fields only: what intake stores of a lead
    errors: tuple[dict, ...] = ()  # {"code", "field", "message"}, as intake answers a seller
    warnings: tuple[dict, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors


def check_row(vertical: Vertical, row: CsvRow, rules: tuple[Rule, ...],
              phone_area_must_match: bool = False) -> CheckedRow:
    """A row checked exactly as intake checks a lead's POST: required fields, types and bounds, the
    constraint rules of the vertical and seller, the ZIP against the state, phone area codes."""
    if row.problem:
        return CheckedRow(row.line, {}, ({"code": "ROW_MALFORMED", "field": None, "message": row.problem},))
    result = verify(vertical, row.values, rules, phone_area_must_match=phone_area_must_match)
    return CheckedRow(row.line, result.fields, tuple(e.as_dict() for e in result.errors),
                      tuple(w.as_dict() for w in result.warnings))


@dataclass(frozen=True)
class Identities:
    """How dedup keys a consumer: the platform's HMAC keys (or one secret) and its email provider rules."""

    secret: HmacKeyring | bytes
    email_provider_rules: bool = True

    @property
    def keyring(self) -> HmacKeyring:
        return self.secret if isinstance(self.secret, HmacKeyring) else HmacKeyring.single(self.secret)

    def of(self, fields: Mapping[str, object]) -> dict[str, str]:
        """Under the current key: what a prospect is stored with."""
        return self.under_every_key(fields)[0]

    def under_every_key(self, fields: Mapping[str, object]) -> list[dict[str, str]]:
        """Under each listed key, the current key's first: what finds a consumer pooled before a rotation."""
        text = {k: str(v) for k, v in fields.items()}
        return [pii.identity_keys(secret, text, self.email_provider_rules) for _, secret in self.keyring.keys]


@dataclass(frozen=True)
class Match:
    first: Hashable  # the line (or lead) that brought the consumer first
    on: tuple[str, ...]  # the identities it shares with it


class SeenConsumers:
    """The identity keys met so far, each with the first row that had it: a consumer counts once
    however many of its identities it shares with earlier rows."""

    def __init__(self) -> None:
        self._first: dict[tuple[str, str], Hashable] = {}
        self._order: dict[Hashable, int] = {}

    def match(self, keys: Mapping[str, str]) -> Match | None:
        """The earliest row sharing an identity with `keys`, or None."""
        found = {kind: self._first[(kind, key)] for kind, key in keys.items() if (kind, key) in self._first}
        if not found:
            return None
        first = min(found.values(), key=self._order.__getitem__)
        return Match(first, tuple(sorted(kind for kind, who in found.items() if who == first)))

    def add(self, keys: Mapping[str, str], who: Hashable) -> None:
        self._order.setdefault(who, len(self._order))
        for kind, key in keys.items():
            self._first.setdefault((kind, key), who)


def batches(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def score(bundle: ModelBundle, fields: Sequence[Mapping[str, object]], created_ms: Sequence[int],
          scored_ms: int) -> list[Score]:
    """The bundle's scores of consumers, in batches of BATCH (one model call per batch). Refused if
    the bundle cannot say how likely a consumer answers a direct offer: that is a prospect's probability."""
    scores: list[Score] = []
    for start in range(0, len(fields), BATCH):
        chunk = fields[start:start + BATCH]
        scores += bundle.score(chunk, created_ms[start:start + BATCH], [scored_ms] * len(chunk))
    if any(not math.isfinite(s.direct_response) for s in scores):
        raise Refused(f"model bundle {bundle.version} has no direct-response model to score prospects with")
    return scores


def quantile_offsets(count: int) -> dict[str, int]:
    """Where each of QUANTILES sits in `count` values sorted: rank ⌊q·(count − 1)⌋ from 0."""
    return {label: math.floor(q * (count - 1)) for label, q in QUANTILES} if count else {}


def _prospect(prospect_id: str, vertical: str, seller_id: str, source: str, source_name: str,
              fields: Mapping[str, object], keys: Mapping[str, str], scored: Score, model_version: str,
              consumer_since_ms: int, added_at_ms: int) -> dict:
    text = {k: str(v) for k, v in fields.items()}
    return {"id": prospect_id, "vertical": vertical, "seller_id": seller_id, "source": source,
            "source_name": source_name[:200], "fields": text, "ssn_key": keys.get(pii.SSN),
            "email_key": keys.get(pii.EMAIL), "home_phone_key": keys.get(pii.HOME_PHONE),
            "state": text.get("state", "")[:2], "probability": scored.direct_response,
            "propensity": scored.probability, "cluster": scored.cluster, "model_version": model_version,
            "consumer_since_ms": consumer_since_ms, "added_at_ms": added_at_ms}


# ---------------------------------------------------------------------- SQL

def pool_matches(session: Session, vertical: str, keys: Iterable[Mapping[str, str]]) -> dict[tuple[str, str], str]:
    """(kind, key) → the id of a prospect of the vertical's pool holding that identity."""
    wanted: dict[str, set[str]] = {kind: set() for kind in _KEY_COLUMNS}
    for one in keys:
        for kind, key in one.items():
            wanted[kind].add(key)
    found: dict[tuple[str, str], str] = {}
    for kind, column in _KEY_COLUMNS.items():
        for chunk in batches(sorted(wanted[kind]), _IN_CHUNK):
            query = select(Prospect.id, column).where(Prospect.vertical == vertical, column.in_(chunk))
            for prospect_id, held in session.execute(query.order_by(Prospect.id)):
                assert held is not None  # the IN above matched it
                found.setdefault((kind, held), prospect_id)
    return found


def _in_pool(under_every_key: Sequence[Mapping[str, str]], pooled: Mapping[tuple[str, str], str]) -> Match | None:
    """The prospect sharing an identity with a consumer, whichever listed key the prospect was keyed under."""
    found: dict[str, str] = {}
    for keys in under_every_key:
        for kind, key in keys.items():
            if (kind, key) in pooled:
                found.setdefault(kind, pooled[(kind, key)])
    if not found:
        return None
    first = min(found.values())
    return Match(first, tuple(sorted(kind for kind, who in found.items() if who == first)))


@dataclass
class ImportReport:
    file: str
    vertical: str
    seller_id: str
    model_version: str
    ignored_columns: list[str]
    rows: int = 0
    imported: int = 0
    rejected: list[dict] = field(default_factory=list)  # {"line", "errors": [{"code", "field", "message"}]}
    duplicates: list[dict] = field(default_factory=list)  # {"line", "duplicate_of": {"line"} | {"prospect"}, "on"}
    warnings: list[dict] = field(default_factory=list)  # of imported rows: {"line", "warnings": [...]}

    def as_dict(self) -> dict:
        return {"file": self.file, "vertical": self.vertical, "seller_id": self.seller_id,
                "model_version": self.model_version, "rows": self.rows, "imported": self.imported,
                "rejected": self.rejected, "duplicates": self.duplicates, "warnings": self.warnings,
                "ignored_columns": self.ignored_columns}


def import_rows(session: Session, csv_file: CsvFile, *, vertical: Vertical, seller_id: str, source_name: str,
                rules: tuple[Rule, ...], identities: Identities, bundle: ModelBundle, now_ms: int,
                phone_area_must_match: bool = False) -> ImportReport:
    """Adds a CSV file's good rows to the vertical's pool as the seller's consumers, in the
    caller's transaction: an error halfway (Refused included) must leave it rolled back, so a file
    is stored whole or not at all. Bad rows and duplicates are reported by line, not stored."""
    if session.get(Seller, seller_id) is None:
        raise Refused(f"no seller {seller_id}")
    report = ImportReport(source_name, vertical.name, seller_id, bundle.version, list(csv_file.ignored))
    seen = SeenConsumers()
    for batch in batches(csv_file.rows, BATCH):
        report.rows += len(batch)
        keyed = []
        for row in batch:
            checked = check_row(vertical, row, rules, phone_area_must_match)
            if checked.ok:
                keyed.append((checked, identities.under_every_key(checked.fields)))
            else:
                report.rejected.append({"line": checked.line, "errors": list(checked.errors)})
        pooled = pool_matches(session, vertical.name, (keys for _, every in keyed for keys in every))
        accepted = []
        for checked, every in keyed:
            keys = every[0]  # the current key's: the rows of one run are keyed alike
            # Earlier rows first: the pool holds this file's earlier batches too, under new ids.
            earlier = seen.match(keys)
            seen.add(keys, checked.line)
            duplicate = ({"line": earlier.first}, earlier) if earlier else None
            if duplicate is None and (held := _in_pool(every, pooled)):
                duplicate = ({"prospect": held.first}, held)
            if duplicate:
                report.duplicates.append({"line": checked.line, "duplicate_of": duplicate[0],
                                          "on": list(duplicate[1].on)})
                continue
            if checked.warnings:
                report.warnings.append({"line": checked.line, "warnings": list(checked.warnings)})
            accepted.append((checked, keys))
        scores = score(bundle, [c.fields for c, _ in accepted], [now_ms] * len(accepted), now_ms)
        rows = [_prospect(new_lead_id(), vertical.name, seller_id, IMPORT, source_name, checked.fields, keys,
                          scored, bundle.version, now_ms, now_ms)
                for (checked, keys), scored in zip(accepted, scores, strict=True)]
        if rows:
            session.execute(insert(Prospect), rows)
        report.imported += len(rows)
    return report


@dataclass
class CollectReport:
    model_version: str
    unsold: int = 0
    aged: int = 0
    duplicates: int = 0  # leads whose consumer was already in the pool (or met earlier in this run)
    without_fields: int = 0

    def as_dict(self) -> dict:
        return {"model_version": self.model_version, "unsold": self.unsold, "aged": self.aged,
                "duplicates": self.duplicates, "without_fields": self.without_fields}


def collect(sessions: sessionmaker[Session], *, identities: Identities, bundle: ModelBundle, now_ms: int,
            aged_days: float) -> CollectReport:
    """Adds every unsold lead, then every aged lead (submitted more than `aged_days` ago, sold or
    unsold), that is not in the pool yet, oldest first: of two leads of one consumer, the earlier
    one's seller has it. A prospect's id is its lead's, so collecting again adds nothing twice;
    each batch is committed on its own, so a collection cut short resumes where it stopped."""
    report = CollectReport(bundle.version)
    seen = SeenConsumers()
    not_pooled = ~exists().where(Prospect.id == Lead.id)
    finished = Lead.status.in_(AGED_STATUSES)
    unsold = (select(Lead.id).join(Sale, Sale.lead_id == Lead.id)
              .where(Sale.sold.is_(False), Sale.buyer_id == "", finished, not_pooled))
    aged = select(Lead.id).where(Lead.submitted_at_ms < now_ms - int(aged_days * DAY_MS), finished, not_pooled)
    for source, query in ((UNSOLD, unsold), (AGED, aged)):
        # One sorted pass over the candidates' ids, read on a connection of its own while each
        # batch is written and committed on another.
        with sessions() as reader:
            ids = reader.scalars(query.order_by(Lead.submitted_at_ms, Lead.id).execution_options(yield_per=BATCH))
            for batch in ids.partitions(BATCH):
                with sessions.begin() as session:
                    found = {lead.id: lead for lead in session.scalars(select(Lead).where(Lead.id.in_(batch)))}
                    leads = [found[lead_id] for lead_id in batch if lead_id in found]
                    _collect_batch(session, leads, source, seen, identities, bundle, now_ms, report)
    return report


def _collect_batch(session: Session, leads: list[Lead], source: str, seen: SeenConsumers, identities: Identities,
                   bundle: ModelBundle, now_ms: int, report: CollectReport) -> None:
    keyed = []
    for lead in leads:
        if not lead.fields or not lead.vertical:
            report.without_fields += 1
        else:
            keyed.append((lead, lead.fields, identities.under_every_key(lead.fields)))
    accepted = []
    for vertical in sorted({lead.vertical for lead, _, _ in keyed}):
        of_vertical = [(lead, fields, every) for lead, fields, every in keyed if lead.vertical == vertical]
        pooled = pool_matches(session, vertical, (keys for _, _, every in of_vertical for keys in every))
        for lead, fields, every in of_vertical:
            keys = every[0]
            vertical_keys = {f"{vertical}\x1f{kind}": key for kind, key in keys.items()}
            earlier = seen.match(vertical_keys)
            seen.add(vertical_keys, lead.id)
            if earlier or _in_pool(every, pooled):
                report.duplicates += 1
            else:
                accepted.append((lead, fields, keys))
    scores = score(bundle, [fields for _, fields, _ in accepted], [lead.submitted_at_ms for lead, _, _ in accepted],
                   now_ms)
    rows = [_prospect(lead.id, lead.vertical, lead.seller_id, source, "", fields, keys, scored,
                      bundle.version, lead.submitted_at_ms, now_ms)
            for (lead, fields, keys), scored in zip(accepted, scores, strict=True)]
    added = _insert_new(session, rows)
    if source == UNSOLD:
        report.unsold += added
    else:
        report.aged += added


def _insert_new(session: Session, rows: list[dict]) -> int:
    """Inserts the prospects whose id is not taken yet (another collection running at the same
    time may have added a lead first): how many were added."""
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    if dialect not in ("sqlite", "postgresql"):
        session.execute(insert(Prospect), rows)
        return len(rows)
    statement = (sqlite_insert if dialect == "sqlite" else postgresql_insert)(Prospect)
    added = session.execute(statement.on_conflict_do_nothing(index_elements=["id"]).returning(Prospect.id), rows)
    return len(added.all())


def rekey(sessions: sessionmaker[Session], identities: Identities) -> tuple[int, int]:
    """Every prospect's identity keys recomputed from its stored fields under the current HMAC key,
    a batch per transaction (a run cut short is resumed by running it again): run once the new key
    is current everywhere, before the old one is dropped. Returns (prospects, keys changed)."""
    seen = changed = 0
    after = ""
    while True:
        with sessions.begin() as session:
            batch = list(session.scalars(select(Prospect).where(Prospect.id > after).order_by(Prospect.id)
                                         .limit(BATCH)))
            if not batch:
                return seen, changed
            for prospect in batch:
                keys = identities.of(prospect.fields or {})
                current = (keys.get(pii.SSN), keys.get(pii.EMAIL), keys.get(pii.HOME_PHONE))
                if (prospect.ssn_key, prospect.email_key, prospect.home_phone_key) != current:
                    prospect.ssn_key, prospect.email_key, prospect.home_phone_key = current
                    changed += 1
            seen += len(batch)
            after = batch[-1].id


def pool_stats(session: Session) -> dict:
    """Per vertical: its prospects, their count per source and per cluster, and the quantiles of
    their probability (of answering a direct offer)."""
    verticals: dict[str, dict] = {}
    for vertical, source, count in session.execute(
            select(Prospect.vertical, Prospect.source, func.count()).group_by(Prospect.vertical, Prospect.source)):
        entry = verticals.setdefault(vertical, {"prospects": 0, "sources": {}, "clusters": {}, "probability": {}})
        entry["prospects"] += count
        entry["sources"][source] = count
    for vertical, cluster, count in session.execute(
            select(Prospect.vertical, Prospect.cluster, func.count()).group_by(Prospect.vertical, Prospect.cluster)):
        verticals[vertical]["clusters"][cluster] = count
    for vertical, entry in verticals.items():
        ranked = select(Prospect.probability).where(Prospect.vertical == vertical).order_by(Prospect.probability)
        # One indexed look-up per quantile (vertical, probability), not every probability in memory.
        entry["probability"] = {label: session.scalar(ranked.offset(offset).limit(1))
                                for label, offset in quantile_offsets(entry["prospects"]).items()}
        entry["sources"] = dict(sorted(entry["sources"].items()))
        entry["clusters"] = dict(sorted(entry["clusters"].items()))
    return {"prospects": sum(e["prospects"] for e in verticals.values()), "verticals": dict(sorted(verticals.items()))}
