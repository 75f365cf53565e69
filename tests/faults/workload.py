"""The fault suite's workload: sellers posting leads at a steady rate while faults are injected, and
the history the checker reads, gathered from the exchange's real edges once the leads have settled."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

import httpx
from sqlalchemy import func, select

from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.leads import status as lead_status
from leadx.platform.db.models import Lead, LedgerEntry, LedgerTransaction, PostAttempt
from tests import http_calls as http
from tests.faults.checker import Attempt, BuyerPost, Charge, Fault, History, SaleEvent, Submission
from tests.integration.harness import Exchange

CLIENT_TIMEOUT_S = 15.0  # a seller's patience: an answer later than this counts as none
_OUTCOME = {ev.SALE_OUTCOME_SOLD: "sold", ev.SALE_OUTCOME_UNSOLD: "unsold"}


class Workload:
    """Leads at `rate_per_s`, each POST on a thread of its own (a stalled intake holds a request, not
    the workload). Every `repeat_every`-th lead is a consumer sent before, by the other seller, so
    dedup has work to do while the faults last."""

    def __init__(self, exchange: Exchange, rate_per_s: float = 4.0, repeat_every: int = 6) -> None:
        self.exchange, self.interval_s, self.repeat_every = exchange, 1.0 / rate_per_s, repeat_every
        self.consumers: list[dict] = []
        self.submissions: list[Submission] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="seller")
        self._sent: list[Future] = []
        self._thread = threading.Thread(target=self._run, name="workload", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> list[Submission]:
        self._stop.set()
        self._thread.join()
        for future in self._sent:
            future.result()  # each records its own answer; an error here is the workload's own bug
        self._pool.shutdown()
        return list(self.submissions)

    def _run(self) -> None:
        count = 0
        while not self._stop.is_set():
            count += 1
            if count % self.repeat_every == 0 and self.consumers:
                consumer = self.exchange.rng.randrange(len(self.consumers))
                key = self.exchange.other_seller_key
            else:
                self.consumers.append(self.exchange.new_consumer())
                consumer, key = len(self.consumers) - 1, self.exchange.seller_key
            self._sent.append(self._pool.submit(self._submit, consumer, key))
            self._stop.wait(self.interval_s)

    def _submit(self, consumer: int, api_key: str) -> None:
        sent_at = time.time()
        try:
            response = http.post(f"{self.exchange.intake_url()}/v1/post", json=self.consumers[consumer],
                                 headers={"Authorization": f"Bearer {api_key}"}, timeout=CLIENT_TIMEOUT_S)
        except httpx.HTTPError:  # no answer: timed out, refused while the intake restarts
            submission = Submission(consumer, sent_at, None, None, "", None)
        else:
            body = _json_or_empty(response)
            submission = Submission(consumer, sent_at, time.time(), response.status_code,
                                    str(body.get("status", "")), body.get("lead_id"))
        with self._lock:
            self.submissions.append(submission)


def _json_or_empty(response: httpx.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def public_statuses(exchange: Exchange, lead_ids: set[str]) -> dict[str, str]:
    with exchange.sql() as session:
        rows = session.execute(select(Lead.id, Lead.status).where(Lead.id.in_(lead_ids))).all()
    return {lead_id: lead_status.PUBLIC[status] for lead_id, status in rows}


def history_of(exchange: Exchange, submissions: list[Submission], faults: list[Fault]) -> History:
    lead_ids = {s.lead_id for s in submissions if s.lead_id}
    sales = [SaleEvent(event_id, sale.lead_id, _OUTCOME[sale.outcome], sale.buyer_id, sale.closed_at_ms)
             for event_id, sale in exchange.sales_events()]
    posts = [BuyerPost(exchange.buyer_ids[name], post["lead_id"], post.get("_idempotency_key"))
             for name, behaviour in exchange.buyers.buyers.items() for post in list(behaviour.posts)]
    with exchange.sql() as session:
        attempts = [Attempt(a.lead_id, a.buyer_id, a.attempt, a.outcome) for a in session.scalars(select(PostAttempt))]
        charges = [Charge(t.lead_id, t.buyer_id) for t in
                   session.scalars(select(LedgerTransaction).where(LedgerTransaction.kind == "sale"))]
        per_transaction = select(LedgerEntry.transaction_id, func.sum(LedgerEntry.amount_cents)) \
            .group_by(LedgerEntry.transaction_id)
        sums = {transaction: int(total) for transaction, total in session.execute(per_transaction)}
    return History(submissions=submissions, sales=sales, posts=posts, attempts=attempts, charges=charges,
                   statuses=public_statuses(exchange, lead_ids), transaction_sums=sums, faults=faults)
