"""Helpers for driving a running exchange from tests: an exchange with demo buyers and a seller,
reading events back from the broker, and querying the ledger.

One exchange can serve many tests: it is started with spare parties (a seller, another seller and
three buyers each, partnered as the first ones are, made before the services start so that every
service knows them), and `Exchange.party()` hands one to each test as an exchange of its own."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterator, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import cast

import httpx
from aiokafka.structs import ConsumerRecord
from sqlalchemy import select
from sqlalchemy.orm import Session

from leadx.accounts import accounts, partnerships
from leadx.contracts import topics
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.dev.demo.buyers import BuyerBehaviour, BuyerServer
from leadx.dev.demo.consumers import make_consumer
from leadx.dev.ports import private_port
from leadx.dev.stack import LOCAL_BUYER_URLS, LocalStack, ManagedProcess
from leadx.leads.sealing import PiiKeyring
from leadx.platform.config import KafkaSettings
from leadx.platform.kafka.admin import ensure_topics
from leadx.platform.db.engine import make_engine, session_factory
from leadx.platform.db.models import Sale
from services.auction.worker import changelog_topic
from tests import http_calls as http
from tests.conftest import TEST_BROKER, TEST_FETCH_MIN_BYTES, TEST_SESSION_TIMEOUT_MS, poll_until
from tests.integration.tails import forget_topics, tails_of

# The services' fetch wait in tests (KAFKA_FETCH_MAX_WAIT_MS, which the answer path's follows, and
# the background consumers'; 25 and 250 ms by default). An idle consumer on tansu
# polls the broker 1000/wait times a second: at 25 ms an idle exchange spends about 0.7 of a core
# (measured), and the suite runs several at once on two cores; at 100 ms about 0.2 (2026-12-06). The
# embedded broker answers a fetch of one partition as soon as a record comes, but holds one over
# several partitions for much of its wait (six partitions: 230 ms at a 1 s wait, 1.2 s at 3 s), so
# a longer wait delays the leads' hops; at 250 ms a sale through a 1 s window took 1.14 to 1.44 s,
# at 100 ms 1.13 to 1.23 s. On Apache Kafka the services wait for 64 KB (KAFKA_FETCH_MIN_BYTES),
# which the tests' few records never fill, so a hop waits the 100 ms out there too unless its
# consumer's last fetch was empty (KAFKA_FETCH_IDLE_WAIT_MS: then it ends at the first record; the
# Kafka run's windows are 5 s). No test asserts a time.
TEST_FETCH_WAIT_MS = 100
# Rounds of leads `Exchange.sell_many` offers before it gives up on the sales still missing (see there).
SELL_ATTEMPTS = 3


@dataclass
class Party:
    """The accounts one test trades with: a seller, another seller, and buyers partnered with both."""
    seller_id: str
    seller_key: str
    other_seller_key: str
    buyer_ids: dict[str, str]  # name → id
    buyer_keys: dict[str, str]  # name → API key
    tag: str  # the buyers' names on the BuyerServer are "<tag>-<name>" ("<name>" with no tag)


def create_party(session: Session, buyers: BuyerServer, buyer_names: list[str], tag: str = "") -> Party:
    seller = accounts.create_seller(session, f"test seller {tag}".strip())
    other = accounts.create_seller(session, f"another seller {tag}".strip())
    buyer_ids, buyer_keys = {}, {}
    for name in buyer_names:
        served = f"{tag}-{name}" if tag else name
        buyers.add(served, BuyerBehaviour(bid=None))
        created = accounts.create_buyer(session, served, buyers.ping_url(served), buyers.post_url(served),
                                        urls=LOCAL_BUYER_URLS)
        buyer_ids[name], buyer_keys[name] = created.id, created.api_key
        # Every test buyer opts in to both test sellers (Buyer Selection offers a lead only to
        # partnered buyers); tests of selection itself make their own accounts.
        for partner in (seller, other):
            partnerships.add_partnership(session, partner.id, created.id)
    return Party(seller.id, seller.api_key, other.api_key, buyer_ids, buyer_keys, tag)


class PartyBuyers:
    """A party's buyers on a shared BuyerServer, under the names the tests give them ("alpha"):
    `buyers` holds only this party's, so a test sees and resets only its own."""

    def __init__(self, server: BuyerServer, party: Party) -> None:
        self.server, self.tag = server, party.tag
        self.buyers = _PartyBehaviours(server, party.tag, list(party.buyer_ids))

    @property
    def port(self) -> int:
        return self.server.port

    def served_name(self, name: str) -> str:
        return f"{self.tag}-{name}"

    def add(self, name: str, behaviour: BuyerBehaviour | None = None) -> BuyerBehaviour:
        self.buyers.names.append(name)
        return self.server.add(self.served_name(name), behaviour)

    def ping_url(self, name: str) -> str:
        return self.server.ping_url(self.served_name(name))

    def post_url(self, name: str) -> str:
        return self.server.post_url(self.served_name(name))


class _PartyBehaviours(MutableMapping):
    def __init__(self, server: BuyerServer, tag: str, names: list[str]) -> None:
        self.server, self.tag, self.names = server, tag, names

    def __getitem__(self, name: str) -> BuyerBehaviour:
        if name not in self.names:
            raise KeyError(name)
        return self.server.buyers[f"{self.tag}-{name}"]

    def __setitem__(self, name: str, behaviour: BuyerBehaviour) -> None:
        if name not in self.names:
            self.names.append(name)
        self.server.buyers[f"{self.tag}-{name}"] = behaviour

    def __delitem__(self, name: str) -> None:
        raise TypeError("a party's buyers stay on the server: the services know their URLs")

    def __iter__(self) -> Iterator[str]:
        return iter(list(self.names))

    def __len__(self) -> int:
        return len(self.names)


@dataclass
class Exchange:
    stack: LocalStack
    buyers: BuyerServer | PartyBuyers
    seller_key: str
    other_seller_key: str
    buyer_ids: dict[str, str]  # name → id
    seller_id: str = ""
    buyer_keys: dict[str, str] = field(default_factory=dict)  # name → API key
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    spare_parties: list[Party] = field(default_factory=list)

    @property
    def prefix(self) -> str:
        return self.stack.topic_prefix

    def party(self) -> Exchange:
        """This exchange as one test's own: its running services, one of its spare parties' accounts
        (used by no other test), and this exchange's consumers (so no two tests make the same one)."""
        if not self.spare_parties:
            raise RuntimeError("no spare party left: the exchange was started with one per test that asked for it")
        party = self.spare_parties.pop(0)
        return Exchange(self.stack, PartyBuyers(self.buyers, party), party.seller_key, party.other_seller_key,
                        party.buyer_ids, seller_id=party.seller_id, buyer_keys=party.buyer_keys, rng=self.rng)

    def intake_url(self, instance: str = "intake") -> str:
        return f"http://127.0.0.1:{self.stack.port_of(instance, 'INTAKE_PORT')}"

    def new_consumer(self) -> dict:
        return make_consumer(self.rng)

    def post(self, lead: dict, instance: str = "intake", api_key: str | None = None,
             headers: dict[str, str] | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {api_key or self.seller_key}", **(headers or {})}
        return http.post(f"{self.intake_url(instance)}/v1/post", json=lead, headers=headers, timeout=15)

    def status(self, lead_id: str, api_key: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {api_key or self.seller_key}"}
        return http.get(f"{self.intake_url()}/v1/leads/{lead_id}", headers=headers, timeout=10)

    def return_lead(self, lead_id: str, buyer: str, reason: str | None = "the consumer never applied",
                    api_key: str | None = None) -> httpx.Response:
        body = {} if reason is None else {"reason": reason}
        return http.post(f"{self.intake_url()}/v1/leads/{lead_id}/return", json=body, timeout=10,
                         headers={"Authorization": f"Bearer {api_key or self.buyer_keys[buyer]}"})

    def fields_of(self, lead: ev.Lead) -> dict[str, str]:
        """A lead's fields as read off a topic, its sealed ones opened with this exchange's keys."""
        return PiiKeyring.parse(self.stack.pii_keys).fields_of(lead)

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

    def sell(self, buyer: str, price_cents: int) -> str:
        """A lead of this party's seller sold to `buyer` alone, at `price_cents`: its id."""
        return self.sell_many(buyer, price_cents, 1)[0]

    def sell_many(self, buyer: str, price_cents: int, count: int) -> list[str]:
        """`count` leads of this party's seller sold to `buyer` alone, at `price_cents`: their ids.
        They are posted side by side, so they wait out one auction window, not one each. The buyers
        answer from this test process, within the tests' 1 s window; when a loaded machine holds
        them past it (CI once saw all three pings of a lead time out at the suite's start) a lead
        closes unsold, and another is offered in its place, in up to SELL_ATTEMPTS rounds."""
        self.reset_buyers()
        self.buyers.buyers[buyer].bid = price_cents
        sold: list[str] = []
        unsold: list[str] = []
        for _ in range(SELL_ATTEMPTS):
            consumers = [self.new_consumer() for _ in range(count - len(sold))]
            with ThreadPoolExecutor(len(consumers)) as pool:
                responses = list(pool.map(self.post, consumers))
            assert all(response.status_code in (200, 202) for response in responses), [r.text for r in responses]
            lead_ids = [response.json()["lead_id"] for response in responses]

            def all_closed(lead_ids: list[str] = lead_ids) -> dict[str, ev.SaleClosed] | None:
                # One read of the topic a poll for them all (each read asks the broker for its end).
                closed = {sale.lead_id: sale for _, sale in self.sales_events() if sale.lead_id in lead_ids}
                return closed if len(closed) == len(lead_ids) else None
            closed = cast(dict[str, ev.SaleClosed], poll_until(all_closed, message="the sales"))
            for lead_id in lead_ids:
                sale = closed[lead_id]
                if sale.outcome == ev.SALE_OUTCOME_SOLD:
                    assert sale.buyer_id == self.buyer_ids[buyer], sale
                    sold.append(lead_id)
                else:
                    unsold.append(lead_id)
            if len(sold) == count:
                return sold
        raise AssertionError(f"{len(sold)} of {count} leads sold to {buyer}; {unsold} closed unsold though it bid")

    def sale_rows(self) -> list[Sale]:
        with self.sql() as session:
            return list(session.scalars(select(Sale)))

    def recorded_sales(self, lead_ids: list[str]) -> list[Sale]:
        """The ledger's sale rows of these leads, once it has recorded them all (a return, and the
        return rate cap, are checked against them)."""
        def recorded() -> list[Sale] | None:
            with self.sql() as session:
                sales = list(session.scalars(select(Sale).where(Sale.lead_id.in_(lead_ids))))
            return sales if len(sales) == len(lead_ids) else None
        return cast(list[Sale], poll_until(recorded, message=f"the ledger's sales of {lead_ids}"))

    def stop(self) -> None:
        """Stop the services, the local infrastructure this exchange started, and its buyers."""
        self.stack.stop()
        self.buyers.stop()
        forget_topics(self.stack.kafka_bootstrap, self.prefix)

    def reset_buyers(self) -> None:
        for name in list(self.buyers.buyers):
            self.buyers.buyers[name] = BuyerBehaviour(bid=None)


PORT_VARIABLES = ("HEALTH_PORT", "INTAKE_PORT", "GRPC_PORT")


def listen_outside_the_ephemeral_range(process: ManagedProcess) -> None:
    """Move the ports a service listens on to private_port's band. Tests kill services and start
    them again on the same ports while other exchanges start beside them; a port is free again
    while its service is down, and another exchange's service took one in that time when ports
    were picked by binding port 0. free_port now picks below the kernel's ephemeral range too, but
    another process (a worker's `leadx run`, a bench) may pick the same one; private_port's band is
    a worker's own, and free_port never picks from it."""
    for variable in PORT_VARIABLES:
        if variable in process.env:
            old, new = process.env[variable], str(private_port())
            process.env[variable] = new
            process.ready_url = process.ready_url.replace(f":{old}/", f":{new}/")
            if variable == "INTAKE_PORT":
                process.env["INTAKE_PUBLIC_URL"] = process.env["INTAKE_PUBLIC_URL"].replace(f":{old}", f":{new}")


@cache
def _event_decoder(message_type):
    """(event id, message) of a record; one function per type, so the tails decode each record once."""
    def decode(record: ConsumerRecord) -> tuple[str, object]:
        return dict(record.headers or ()).get("event-id", b"").decode(), message_type.FromString(record.value)
    return decode


def read_topic(bootstrap: str, topic: str, message_type) -> list[tuple[str, object]]:
    """Every record of a topic from its beginning up to its current end: (event id, message) each."""
    return tails_of(bootstrap).decoded(topic, _event_decoder(message_type))


def read_records(bootstrap: str, topic: str) -> list[ConsumerRecord]:
    """Every record of a topic from its beginning up to its current end, as the broker holds it."""
    return tails_of(bootstrap).records(topic)


def start_exchange(run_dir: Path, kafka_bootstrap: str, redis_url: str, prefix: str,
                   buyer_names: list[str], services: list[str], window_s: float | None = None,
                   database_url: str | None = None, spare_parties: int = 0,
                   prepare: Callable[[Session, Party], None] | None = None, wait_ready: bool = True,
                   **service_env: str) -> Exchange:
    """The exchange's accounts, then its services. `prepare(session, party)` changes the first
    party's accounts before any service starts (a change made later reaches the services only
    when they next re-read the accounts). With `wait_ready=False` it returns once the services are
    started: the caller waits for them (`stack.wait_ready`)."""
    service_env.setdefault("KAFKA_FETCH_MAX_WAIT_MS", str(TEST_FETCH_WAIT_MS))
    # The ledger's too (250 ms by default): many tests wait for its records.
    service_env.setdefault("KAFKA_BACKGROUND_FETCH_MAX_WAIT_MS", str(TEST_FETCH_WAIT_MS))
    if window_s is None:
        # 1 s keeps the suite quick on tansu. On Apache Kafka the first leads through a new exchange
        # wait seconds on consumer groups still settling (CI saw 25 s to the first auction), and
        # delivery's pings then came so late in a 1 s window that the bids missed the close. At 3 s
        # (the product's default) a first auction still closed with no bid while the other xdist
        # worker sent a burst of 200 leads: a consumer starved past its session, its group
        # rebalanced, and delivery's pings were still unanswered at the close. 5 s leaves room.
        window_s = 5.0 if TEST_BROKER == "kafka" else 1.0
    if TEST_BROKER == "kafka":  # as production runs it (tansu has no InitProducerId)
        service_env.setdefault("KAFKA_IDEMPOTENCE", "true")
    # An exchange on a broker other than the session's (the fault suite's Apache Kafka cluster, a
    # container's, a tansu of its own) passes its broker's session_timeout_for and fetch_min_bytes_for.
    service_env.setdefault("KAFKA_SESSION_TIMEOUT_MS", str(TEST_SESSION_TIMEOUT_MS))
    service_env.setdefault("KAFKA_FETCH_MIN_BYTES", str(TEST_FETCH_MIN_BYTES))
    stack = LocalStack(run_dir, kafka_bootstrap=kafka_bootstrap, redis_url=redis_url, topic_prefix=prefix,
                       database_url=database_url, auction_window_s=window_s, extra_env=service_env)
    stack.start_infra()  # only the SQLite path: the broker and Redis are given
    engine = make_engine(stack.database_url)
    buyers = BuyerServer()
    with session_factory(engine)() as session:
        party = create_party(session, buyers, buyer_names)
        spares = [create_party(session, buyers, buyer_names, tag=f"p{n}") for n in range(spare_parties)]
        if prepare is not None:
            prepare(session, party)
            session.commit()
    engine.dispose()
    buyers.start()
    if TEST_BROKER == "kafka":
        create_topics_first(stack)
    for name in services:
        service = name.split("-")[0]
        listen_outside_the_ephemeral_range(stack.add_service(service, instance=name))
    stack.start_services()
    try:
        if wait_ready:
            stack.wait_ready(timeout_s=120)
    except Exception:
        stack.stop()
        buyers.stop()
        raise
    return Exchange(stack, buyers, party.seller_key, party.other_seller_key, party.buyer_ids,
                    seller_id=party.seller_id, buyer_keys=party.buyer_keys, spare_parties=spares)


def create_topics_first(stack: LocalStack) -> None:
    """An exchange's topics, made before its services start: on Apache Kafka the suite starts four
    exchanges at once beside the broker, and its elections of their partitions' leaders, starved
    of CPU by some thirty starting processes, once took over 30 s. Made here, one exchange after
    another, each service then finds its topics led. The services still make any that are missing."""
    kafka = KafkaSettings(bootstrap_servers=stack.kafka_bootstrap, topic_prefix=stack.topic_prefix,
                          partitions=stack.partitions, replication_factor=1, idempotence=True)
    asyncio.run(ensure_topics(kafka, compacted=(changelog_topic(kafka),)))


class _Sql:
    def __init__(self, database_url: str) -> None:
        self.engine = make_engine(database_url)

    def __enter__(self):
        self.session = session_factory(self.engine)()
        return self.session

    def __exit__(self, *_exc) -> None:
        self.session.close()
        self.engine.dispose()
