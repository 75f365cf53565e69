"""Helpers for driving a running exchange from tests: an exchange with demo buyers and a seller,
reading events back from the broker, and querying the ledger."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import select

from leadx.accounts import accounts, partnerships
from leadx.contracts import topics
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.dev.demo.buyers import BuyerBehaviour, BuyerServer
from leadx.dev.demo.consumers import make_consumer
from leadx.dev.stack import LocalStack
from leadx.platform.db.engine import create_schema, make_engine, session_factory
from leadx.platform.db.models import Sale
from leadx.platform.kafka.offsets import read_to_end


@dataclass
class Exchange:
    stack: LocalStack
    buyers: BuyerServer
    seller_key: str
    other_seller_key: str
    buyer_ids: dict[str, str]  # name → id
    seller_id: str = ""
    buyer_keys: dict[str, str] = field(default_factory=dict)  # name → API key
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    @property
    def prefix(self) -> str:
        return self.stack.topic_prefix

    def intake_url(self, instance: str = "intake") -> str:
        return f"http://127.0.0.1:{self.stack.port_of(instance, 'INTAKE_PORT')}"

    def new_consumer(self) -> dict:
        return make_consumer(self.rng)

    def post(self, lead: dict, instance: str = "intake", api_key: str | None = None,
             headers: dict[str, str] | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {api_key or self.seller_key}", **(headers or {})}
        return httpx.post(f"{self.intake_url(instance)}/v1/post", json=lead, headers=headers, timeout=15)

    def status(self, lead_id: str, api_key: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {api_key or self.seller_key}"}
        return httpx.get(f"{self.intake_url()}/v1/leads/{lead_id}", headers=headers, timeout=10)

    def return_lead(self, lead_id: str, buyer: str, reason: str | None = "the consumer never applied",
                    api_key: str | None = None) -> httpx.Response:
        body = {} if reason is None else {"reason": reason}
        return httpx.post(f"{self.intake_url()}/v1/leads/{lead_id}/return", json=body, timeout=10,
                          headers={"Authorization": f"Bearer {api_key or self.buyer_keys[buyer]}"})

    def sql(self):
        """A session on the exchange's database (close it: `with market.sql() as session`)."""
        return _Sql(self.stack.database_url)

    def sales_events(self) -> list[tuple[str, ev.SaleClosed]]:
        """Every sale.closed event so far, with its event id."""
        return read_topic(self.stack.kafka_bootstrap, topics.name(self.prefix, topics.SALE_CLOSED), ev.SaleClosed)

    def sale_for(self, lead_id: str) -> ev.SaleClosed | None:
        for _, sale in self.sales_events():
            if sale.lead_id == lead_id:
                return sale
        return None

    def sale_rows(self) -> list[Sale]:
        with self.sql() as session:
            return list(session.scalars(select(Sale)))

    def stop(self) -> None:
        """Stop the services, the local infrastructure this exchange started, and its buyers."""
        self.stack.stop()
        self.buyers.stop()

    def reset_buyers(self) -> None:
        for name in list(self.buyers.buyers):
            self.buyers.buyers[name] = BuyerBehaviour(bid=None)


def read_topic(bootstrap: str, topic: str, message_type) -> list[tuple[str, object]]:
    """Read a topic from the beginning up to its current end: (event id, message) each."""
    return [(dict(record.headers or ()).get("event-id", b"").decode(), message_type.FromString(record.value))
            for record in asyncio.run(read_to_end(bootstrap, topic))]


def start_exchange(run_dir: Path, kafka_bootstrap: str, redis_url: str, prefix: str,
                   buyer_names: list[str], services: list[str], window_s: float = 1.0,
                   database_url: str | None = None, **service_env: str) -> Exchange:
    stack = LocalStack(run_dir, kafka_bootstrap=kafka_bootstrap, redis_url=redis_url, topic_prefix=prefix,
                       database_url=database_url, auction_window_s=window_s, extra_env=service_env)
    stack.start_infra()  # only the SQLite path: the broker and Redis are given
    engine = make_engine(stack.database_url)
    create_schema(engine)
    buyers = BuyerServer()
    buyer_ids, buyer_keys = {}, {}
    with session_factory(engine)() as session:
        seller = accounts.create_seller(session, "test seller")
        other = accounts.create_seller(session, "another seller")
        for name in buyer_names:
            buyers.add(name, BuyerBehaviour(bid=None))
            created = accounts.create_buyer(session, name, buyers.ping_url(name), buyers.post_url(name))
            buyer_ids[name], buyer_keys[name] = created.id, created.api_key
            # Every test buyer opts in to both test sellers (Buyer Selection offers a lead only to
            # partnered buyers); tests of selection itself make their own accounts.
            for partner in (seller, other):
                partnerships.add_partnership(session, partner.id, created.id)
    engine.dispose()
    buyers.start()
    for name in services:
        service = name.split("-")[0]
        stack.add_service(service, instance=name)
    stack.start_services()
    try:
        stack.wait_ready(timeout_s=120)
    except Exception:
        stack.stop()
        buyers.stop()
        raise
    return Exchange(stack, buyers, seller.api_key, other.api_key, buyer_ids, seller_id=seller.id,
                    buyer_keys=buyer_keys)


class _Sql:
    def __init__(self, database_url: str) -> None:
        self.engine = make_engine(database_url)

    def __enter__(self):
        self.session = session_factory(self.engine)()
        return self.session

    def __exit__(self, *_exc) -> None:
        self.session.close()
        self.engine.dispose()
