"""`leadx run`: the whole exchange on this machine with a demo seller and demo buyers.

Starts the broker and Redis unless KAFKA_BOOTSTRAP_SERVERS / a reachable REDIS_URL are given (the
broker: Apache Kafka where Java 17+ is present, tansu where it is not, or as `--broker` says),
uses SQLite unless DATABASE_URL is set, starts every service, then posts leads in JSON, XML and
URL-encoded form, PINGing some first (and some repeats, to show duplicates being caught), and prints
each step until Ctrl-C or --leads N.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import secrets
import shlex
import shutil
import signal
import sys
import time
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from datetime import date
from pathlib import Path

import httpx
from aiokafka import TopicPartition

from leadx.accounts import accounts, partnerships, people
from leadx.accounts import buyer_settings as buyer_profiles
from leadx.contracts import topics
from leadx.dev.demo.buyers import BuyerServer, random_behaviour
from leadx.dev.demo.consumers import ping_subset
from leadx.dev.demo.printer import EventPrinter
from leadx.dev.simulation.market import Seller, consumer
from leadx.dev import exchange_env, kafka_broker
from leadx.dev.ports import port_taken
from leadx.dev.stack import LOCAL_BUYER_URLS, SERVICES, LocalStack, free_port, redis_reachable
from leadx.dev.supervisor import Supervisor
from leadx.platform.config import env_int
from leadx.platform.kafka import clients
from leadx.platform.db.engine import make_engine, session_factory

DEMO_BUYERS = [  # name, bid range in cents, share of posted leads accepted
    ("Acme Auto Finance", 800, 2000, 0.85),
    ("Budget Lenders", 500, 1200, 0.9),
    ("Prime Motors Credit", 1000, 2500, 0.6),
    ("Coastal Credit Union", 600, 1500, 0.8),
]
DEMO_MIN_PRICE_CENTS = 700
SELLER_TIMEOUT_S = 10
ERROR_PAUSE_S = 2.0  # after a call that failed, before the next lead
SUPERVISE_EVERY_S = 1.0
STOP_WAIT_S = 5.0
# The demo seller's consumers come from the market simulator (leadx simulate), a good seller's.
DEMO_SELLER = Seller("demo", quality=0.8)
# An AutoBid buyer: no servers of its own; the platform bids from its
# profiles and accepts the leads it wins on its behalf. It pays more for owners with a good income,
# and by the lead's response probability otherwise.
DEMO_AUTOBID_BUYER = "Sunday Drive Dealers"
DEMO_AUTOBID_PROFILES = [
    {"name": "homeowners with income", "price": 1800,
     "criteria": [{"residence_types": ["own"], "income": {"min": 400000}}]},
    {"name": "by response probability", "criteria": [{"price": {"per_probability": 4000}}]},
]


# The people of the demo's accounts who log in to the web portal (made-up addresses; new passwords
# every run, printed with the tour).
DEMO_PEOPLE = (("the demo buyer", "demo-buyer@example.com", people.BUYER),
               ("the demo seller", "demo-seller@example.com", people.SELLER),
               ("an operator", "demo-operator@example.com", people.OPERATOR))


class BrokerUnavailable(Exception):
    """`--broker kafka` on a machine that cannot run Apache Kafka; the message says why."""


def choose_broker(wanted: str) -> str:
    """The local broker to start: "kafka" or "tansu". `auto` takes Apache Kafka where Java 17+ is
    present, its jars fetched from Maven Central the first time, and tansu otherwise; the choice and
    its reason are printed. `kafka` that cannot be raises BrokerUnavailable."""
    if wanted == "tansu":
        print("leadx: broker: tansu (--broker tansu)", flush=True)
        return "tansu"
    problem = kafka_broker.java_problem()
    if problem is None and not kafka_broker.fetched():
        try:
            kafka_broker.fetch()  # says it is fetching; minutes the first time, then never again
        except RuntimeError as error:
            problem = (f"its jars are not in {kafka_broker.jars_dir()} and could not be fetched"
                       f" ({str(error).splitlines()[0]}); `make kafka-jars` fetches them")
    if problem is None:
        why = "--broker kafka" if wanted == "kafka" else "Java is present; --broker tansu for the light one"
        print(f"leadx: broker: Apache Kafka {kafka_broker.KAFKA_VERSION} ({why})", flush=True)
        return "kafka"
    if wanted == "kafka":
        raise BrokerUnavailable(f"Apache Kafka cannot run here: {problem}")
    print(f"leadx: broker: tansu, as Apache Kafka cannot run here: {problem}. tansu keeps its data in memory,"
          " and standard Kafka tools such as kcat cannot talk to it", flush=True)
    return "tansu"


def kafka_client_settings(environ: Mapping[str, str], bootstrap: str | None, broker: str) -> dict[str, str]:
    """The services' Kafka client settings beyond the stack's own. On the user's brokers, the user's
    (KAFKA_IDEMPOTENCE, KAFKA_REPLICATION_FACTOR, security...): the stack passes no KAFKA_ variable
    on by itself. On the local Apache Kafka, idempotent producers, as in production (tansu refuses
    them)."""
    if bootstrap:
        return {k: v for k, v in environ.items()
                if k.startswith("KAFKA_") and k not in ("KAFKA_BOOTSTRAP_SERVERS", "KAFKA_PARTITIONS")}
    return {"KAFKA_IDEMPOTENCE": "true"} if broker == "kafka" else {}


def _stack(run_dir: Path, window_s: float, broker: str) -> LocalStack:
    redis_url = os.environ.get("REDIS_URL")
    database_url = os.environ.get("DATABASE_URL")
    if not database_url:
        for leftover in run_dir.glob("leadx.db*"):
            leftover.unlink()  # a fresh demo: no buyers from an earlier run with dead URLs
    admin_key = secrets.token_urlsafe(24)  # this run's own: in exchange.env, for the commands beside it
    kafka_bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or None
    if kafka_bootstrap:
        print(f"leadx: broker: {kafka_bootstrap} (KAFKA_BOOTSTRAP_SERVERS)", flush=True)
    chosen = "tansu" if kafka_bootstrap else choose_broker(broker)
    return LocalStack(
        run_dir.resolve(),  # its SQLite path then reads the same from any folder (exchange.env)
        kafka_bootstrap=kafka_bootstrap,
        broker=chosen,
        redis_url=redis_url if redis_url and redis_reachable(redis_url) else None,
        database_url=database_url or None,
        auction_window_s=window_s,
        extra_env={"ADMIN_API_KEY": admin_key, "DASHBOARD_ADMIN_API_KEY": admin_key,
                   **kafka_client_settings(os.environ, kafka_bootstrap, chosen)},
        intake_port=documented_port("INTAKE_PORT", 8080, "the intake"),
        grpc_port=documented_port("GRPC_PORT", 50051, "gRPC"),
        portal_port=documented_port("PORTAL_PORT", 8000, "the portal"),
    )


def documented_port(variable: str, default: int, what: str) -> int:
    """The port the docs give (or the one `variable` sets), unless something listens there already:
    then a free one, said plainly."""
    wanted = env_int(variable, default)
    if not port_taken(wanted):
        return wanted
    chosen = free_port()
    print(f"leadx: port {wanted} for {what} is taken (another `make run`?); using {chosen} instead"
          f" (set {variable} to choose)", flush=True)
    return chosen


def exchange_settings(stack: LocalStack, intake_url: str, grpc_address: str, seller_key: str) -> dict[str, str]:
    """What `leadx` commands beside this run need (leadx.dev.exchange_env)."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap or "",
        "REDIS_URL": stack.redis_url or "",
        "DATABASE_URL": stack.database_url or "",
        "LEADX_HMAC_KEY": stack.hmac_key,
        "LEADX_TOPIC_PREFIX": stack.topic_prefix,
        "INTAKE_URL": intake_url,
        "GRPC_ADDRESS": grpc_address,
        "PORTAL_URL": f"http://127.0.0.1:{stack.port_of('portal', 'PORTAL_PORT')}",
        "ADMIN_API_KEY": stack.extra_env["ADMIN_API_KEY"],
        "DASHBOARD_ADMIN_API_KEY": stack.extra_env["DASHBOARD_ADMIN_API_KEY"],
        "DEMO_SELLER_KEY": seller_key,
        "LEADX_HEALTH_URLS": stack.health_urls(),
        # `leadx buyer create` beside it takes local buyers, as its services call them.
        "BUYER_URLS_ALLOW_PRIVATE": "true",
    }


def create_demo_people(session, seller_id: str, buyer_id: str) -> list[tuple[str, str, str]]:
    """A person of the demo seller, one of a demo buyer (owners both) and an operator: (who, email,
    password) of each, the password new and random."""
    logins = []
    for who, email, kind in DEMO_PEOPLE:
        password = secrets.token_urlsafe(12)
        account = {people.BUYER: buyer_id, people.SELLER: seller_id}.get(kind, "")
        people.create_person(session, email, password, kind, account, people.OWNER)
        logins.append((who, email, password))
    return logins


def portal_tour(portal_url: str, logins: list[tuple[str, str, str]]) -> list[str]:
    """The portal's address and the demo's logins (docs/portal.md)."""
    width = max(len(email) for _, email, _ in logins)
    return [f"leadx: the web portal: {portal_url}  (docs/portal.md); log in as",
            *(f"  {who:<16} {email:<{width}}  password {password}" for who, email, password in logins)]


def kcat_tour(bootstrap: str) -> list[str]:
    """Lines to paste for the Apache Kafka `leadx run` started: the topics with Kafka's own tools."""
    missing = "" if shutil.which("kcat") else " (apt-get install kcat)"
    return [
        f"leadx: the topics with Kafka's own tools, e.g. Debian's kcat{missing}:",
        f"  kcat -b {bootstrap} -L",
        f"  kcat -b {bootstrap} -C -t sale.closed -o beginning -e -f '%k  %h\\n'",
    ]


def quick_tour(intake_port: int, seller_key: str, lead: dict, env_path: Path, kcat_bootstrap: str | None = None
               ) -> list[str]:
    """Lines to paste: a lead posted as the demo seller, and the sales as they close (and, on
    Apache Kafka, the topics read with kcat)."""
    leadx_command = Path(sys.executable).parent / "leadx"
    command = os.path.relpath(leadx_command) if leadx_command.exists() else "leadx"
    return [
        f"leadx: its settings are in {env_path}: `leadx` commands run from this folder use them"
        f" (elsewhere: LEADX_ENV={env_path.resolve()}).",
        "leadx: post a lead yourself, as the demo seller:",
        f"  curl -s localhost:{intake_port}/v1/post -H 'Authorization: Bearer {seller_key}'"
        f" -H 'Content-Type: application/json' -d {shlex.quote(json.dumps(lead))}",
        "leadx: watch the sales close, in another terminal:",
        f"  {command} tail sale.closed",
        f"leadx: the exchange at a glance: {command} status  (each service's Prometheus metrics: GET /metrics"
        " on its health port, listed in LEADX_HEALTH_URLS; docs/operations.md)",
        *(kcat_tour(kcat_bootstrap) if kcat_bootstrap else []),
    ]


async def _print_events(stack: LocalStack, printer: EventPrinter, stop: asyncio.Event) -> None:
    """Prints each event of the printer's topics. A broker that stalls, restarts or answers oddly
    is printed as one line and the printer goes on, from where it was."""
    names = [topics.name(stack.topic_prefix, t) for t in printer.TOPICS]
    positions: dict[TopicPartition, int] = {}  # next offset to print, kept across reconnections
    while not stop.is_set():
        # The local stack's broker: plaintext, as leadx.dev.stack starts it.
        consumer = clients.consumer(stack.kafka_bootstrap or "", *names, group_id=None, auto_offset_reset="earliest")
        try:
            await consumer.start()
            for partition, offset in positions.items():
                consumer.seek(partition, offset)
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=200)
                for partition, records in batch.items():
                    for record in records:
                        positions[partition] = record.offset + 1
                        _print_record(stack, printer, record)
        except Exception as error:  # noqa: BLE001 - the demo reports a broker's trouble and goes on
            print(f"events  cannot read the topics ({type(error).__name__}: {error}); trying again", flush=True)
            await _wait(stop, ERROR_PAUSE_S)
        finally:
            with contextlib.suppress(Exception):  # a consumer that never started has little to stop
                await consumer.stop()


def _print_record(stack: LocalStack, printer: EventPrinter, record) -> None:
    base = record.topic[len(stack.topic_prefix):]
    try:
        text = printer.line(base, printer.TOPICS[base].FromString(record.value))
    except Exception as error:  # noqa: BLE001 - one record it cannot read is not the end of the demo
        text = f"events  a {base} record at offset {record.offset} could not be read ({type(error).__name__})"
    if text:
        print(text, flush=True)


FORMATS = ("application/json", "application/xml", "application/x-www-form-urlencoded")


def encode(lead: dict, content_type: str, root: str = "lead") -> bytes:
    """The lead in one of the three formats sellers use (JSON, XML, URL-encoded)."""
    if content_type == "application/json":
        return json.dumps(lead).encode()
    if content_type == "application/xml":
        element = ET.Element(root)
        for name, value in lead.items():
            ET.SubElement(element, name).text = str(value)
        return ET.tostring(element)
    return urllib.parse.urlencode(lead).encode()


async def sell_demo_leads(intake_url: str, api_key: str, leads: int | None, rate: float, seed: int,
                stop: asyncio.Event) -> int:
    """The demo seller: rotates through the three formats, PINGs every other lead first and sends
    its token with the POST, and repeats every fifth consumer so the exchange has duplicates to catch.
    A call that times out, cannot connect or gets an answer it cannot use is printed as one line;
    the seller waits a moment and goes on with its next lead."""
    rng = random.Random(seed)
    posted: list[dict] = []
    count = 0
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
                                 timeout=SELLER_TIMEOUT_S) as http:
        while not stop.is_set() and (leads is None or count < leads):
            repeat = bool(posted) and count % 5 == 4
            lead = dict(rng.choice(posted)) if repeat else consumer(rng, DEMO_SELLER, date.today())
            lead["min_price"] = DEMO_MIN_PRICE_CENTS
            posted.append({k: v for k, v in lead.items() if k != "ping_token"})
            content_type = FORMATS[count % len(FORMATS)]
            count += 1
            if count % 2 == 1 and not repeat:  # a repeat goes straight to POST, to show dedup catching it
                body = await _call(http, "PING", f"{intake_url}/v1/ping",
                                   encode(ping_subset(lead), content_type, "ping"), content_type)
                if body is None:
                    await _wait(stop, ERROR_PAUSE_S)
                    continue
                wanted = "wanted" if body.get("wanted") else "not wanted"
                print(f"seller  PING zip {lead['zip']} ({content_type.split('/')[1]}): {body.get('status')}"
                      f"{', ' + wanted if body.get('status') == 'accepted' else ''}", flush=True)
                if body.get("status") != "accepted" or "ping_token" not in body:
                    await _pause(stop, rate)
                    continue
                lead["ping_token"] = body["ping_token"]
            answer = await _call(http, "POST", f"{intake_url}/v1/post", encode(lead, content_type), content_type)
            await (_wait(stop, ERROR_PAUSE_S) if answer is None else _pause(stop, rate))
    return count


async def _call(http: httpx.AsyncClient, what: str, url: str, content: bytes, content_type: str) -> dict | None:
    """One PING or POST. Its JSON answer when the intake gave one it stands by (2xx, or a duplicate's
    409, which the event printer shows); otherwise None, after one line saying what happened."""
    try:
        response = await http.post(url, content=content, headers={"Content-Type": content_type})
    except httpx.TimeoutException:
        print(f"seller  {what}: no answer within {SELLER_TIMEOUT_S:g}s; going on with the next lead", flush=True)
        return None
    except httpx.TransportError as error:
        print(f"seller  {what}: {type(error).__name__} ({error}); going on with the next lead", flush=True)
        return None
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not (response.is_success or response.status_code == 409):
        print(f"seller  {what}: HTTP {response.status_code} {' '.join(response.text.split())[:160]!r};"
              f" going on with the next lead", flush=True)
        return None
    return body


async def _pause(stop: asyncio.Event, rate: float) -> None:
    await _wait(stop, 1 / rate)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass


async def _settled(printer: EventPrinter, stop: asyncio.Event, timeout_s: float) -> None:
    """Wait until every lead that went in has an outcome (or a duplicate verdict)."""
    deadline = time.monotonic() + timeout_s
    while not stop.is_set() and time.monotonic() < deadline:
        c = printer.counts
        if c["submitted"] and c["sold"] + c["unsold"] + c["duplicates"] + c["rejected"] >= c["submitted"]:
            return
        await asyncio.sleep(0.2)


def run_exchange(leads: int | None, rate: float, window_s: float, seed: int, run_dir: Path,
                 broker: str = "auto") -> int:
    """`broker`: auto, kafka or tansu (choose_broker), when KAFKA_BOOTSTRAP_SERVERS names none."""
    # The event printer's Kafka client would log every failed reconnection while the broker is away;
    # the supervisor and the printer say what happens in a line each.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    stack = _stack(run_dir, window_s, broker)
    buyers = BuyerServer()
    print("leadx: starting the broker, Redis and SQL where none is configured ...", flush=True)
    try:
        stack.start_infra()  # in the try: a part that fails to start takes those started before it along
        assert stack.database_url is not None  # start_infra chose one when none was given
        engine = make_engine(stack.database_url)  # its schema upgraded by start_infra
        sessions = session_factory(engine)
        rng = random.Random(seed)
        names: dict[str, str] = {}
        with sessions() as session:
            seller = accounts.create_seller(session, "Demo Lead Generator")
            for name, low, high, accept in DEMO_BUYERS:
                buyers.add(name, random_behaviour(rng, low, high, accept))
                created = accounts.create_buyer(session, name, buyers.ping_url(name), buyers.post_url(name),
                                                urls=LOCAL_BUYER_URLS)
                names[created.id] = name
            autobid = accounts.create_buyer(session, DEMO_AUTOBID_BUYER, "", "", kind="autobid")
            buyer_profiles.replace_profiles(session, autobid.id, DEMO_AUTOBID_PROFILES)
            names[autobid.id] = DEMO_AUTOBID_BUYER
            for buyer_id in names:  # every demo buyer opts in to the demo seller's leads
                partnerships.add_partnership(session, seller.id, buyer_id)
            logins = create_demo_people(session, seller.id, next(iter(names)))
        engine.dispose()
        buyers.start()
        for name in SERVICES:
            stack.add_service(name)
        stack.start_services()
        print(f"leadx: starting services {', '.join(SERVICES)} ...", flush=True)
        stack.wait_ready(timeout_s=120)
        intake_port = stack.port_of("intake", "INTAKE_PORT")
        intake_url = f"http://127.0.0.1:{intake_port}"
        grpc_address = f"127.0.0.1:{stack.port_of('ledger', 'GRPC_PORT')}"
        print(f"leadx: exchange ready. intake {intake_url}  gRPC {grpc_address}"
              f"  broker {stack.kafka_bootstrap}  redis {stack.redis_url}  sql {stack.database_url}", flush=True)
        env_path = exchange_env.write(run_dir, exchange_settings(stack, intake_url, grpc_address, seller.api_key))
        sample = consumer(random.Random(seed + 1), DEMO_SELLER, date.today())
        kcat_bootstrap = stack.kafka_bootstrap if stack.broker == "kafka" else None  # tansu: kcat cannot
        portal_url = f"http://127.0.0.1:{stack.port_of('portal', 'PORTAL_PORT')}"
        for line in [*quick_tour(intake_port, seller.api_key, {**sample, "min_price": DEMO_MIN_PRICE_CENTS},
                                 env_path, kcat_bootstrap), *portal_tour(portal_url, logins)]:
            print(line, flush=True)
        print(f"leadx: {len(DEMO_BUYERS)} demo buyers bidding, one AutoBid buyer bid for by the platform;"
              f" the demo seller posts {rate:g} lead/s"
              f" (min price {DEMO_MIN_PRICE_CENTS / 100:.2f}); auction window {window_s:g}s."
              f" Logs in {run_dir / 'logs'}. Ctrl-C stops everything.", flush=True)
        printer = EventPrinter(names)
        asyncio.run(_demo(stack, printer, intake_url, seller.api_key, leads, rate, seed, window_s))
        print(f"leadx: {printer.summary()}", flush=True)
        return 0
    finally:
        with contextlib.suppress(OSError):  # a reader of its output that went away must not keep it from stopping
            print("leadx: stopping services, broker and Redis ...", flush=True)
        (run_dir / exchange_env.FILE_NAME).unlink(missing_ok=True)
        stack.stop()
        buyers.stop()


async def _demo(stack: LocalStack, printer: EventPrinter, intake_url: str, api_key: str,
                leads: int | None, rate: float, seed: int, window_s: float) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    printing = asyncio.create_task(_print_events(stack, printer, stop))
    supervising = asyncio.create_task(_supervise(Supervisor(stack), stop))
    await sell_demo_leads(intake_url, api_key, leads, rate, seed, stop)
    if leads is not None:
        await _settled(printer, stop, timeout_s=window_s + 60)
        stop.set()
    else:
        await stop.wait()
    # Both end at their next look; one stuck on a stalled broker is not waited for past a moment.
    _, stuck = await asyncio.wait([printing, supervising], timeout=STOP_WAIT_S)
    for task in stuck:
        task.cancel()


async def _supervise(supervisor: Supervisor, stop: asyncio.Event) -> None:
    """Once a second, a look at every process (leadx.dev.supervisor); only Ctrl-C ends the demo."""
    while not stop.is_set():
        await asyncio.to_thread(supervisor.check)
        await _wait(stop, SUPERVISE_EVERY_S)
