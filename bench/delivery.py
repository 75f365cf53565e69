"""Benchmark of delivery to buyers (`make bench-delivery`).

In one run, on one machine:
  * adaptation cost per lead (µs): a realistic buyer section (every rule kind of docs/post-rules.md, 14 rules)
    turned into a URL-encoded, a JSON and an XML body, in process;
  * adapted posts per second by one worker's client: BuyerClient.post of adapted bodies to a
    local buyer, 64 at a time, on uvloop (the services' loop), each reply read by reply rules;
  * pings fanned out per second to 100 local buyers of which 10% are slow (they answer after 1 s):
    16 auctions at once, each pinging all 100 concurrently as PingFanout does, through one client
    of 200 connections; with the fast buyers' ping latency (slow ones must not hold them up);
  * beside a bare httpx POST rate, and a bare aiohttp one, to the same local server, 64 at a time;
  * pings at the pace of the whole (bench/sustained.py): 100 auctions a second, three fast buyers
    each, where a call shares few loop wake-ups with others;
  * with each phase's client CPU per call (this process's CPU time over the calls made).
The buyers are a separate process (aiohttp), so the client's figures are the client's. Figures are
printed and written to bench/results/delivery.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import uvloop
from loadgen import write_results

from leadx.auction.selection.market import BuyerAccount
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.delivery.post_adaptation import adapt_post, known_fields, lead_view, prepare_post
from leadx.delivery.post_adaptation.syntax import parse_rules
from leadx.dev.demo.consumers import make_consumer
from leadx.dev.stack import LOCAL_BUYER_URLS, free_port, wait_for_port
from leadx.leads.verticals import load_verticals, verify
from services.delivery.buyer_http import BuyerClient

RESULTS = ROOT / "bench" / "results" / "delivery.json"
BUYERS = 100
SLOW_EVERY = 10  # buyers 0, 10, 20, ... are slow
SLOW_S = 1.0
SLOW_IDS = {f"b{n}" for n in range(0, BUYERS, SLOW_EVERY)}
SECTION = """
[buyer bench-{fmt}]
format {fmt}
applicant/zip      <- zip
source             <- "leadx"
phone/area         <- home_phone[1:3]
phone/exchange     <- home_phone[4:6]
phone/line         <- home_phone[7:10]
birth_month        <- date_of_birth ~ /^(\\d{{4}})-(\\d\\d)/ -> "\\2/\\1"
owns_home          <- residence_type {{own: yes, rent: no, other: no}}
applicant/name     <- first_name + " " + last_name
applicant/dob      <- date_of_birth as date "%m/%d/%Y"
income             <- gross_monthly_income as dollars
amount             <- requested_amount as whole_dollars
work_phone         <- work_phone | "none"
email              <- email
ref                <- lead_id
reply json
accepted      <- accepted
confirmation  <- confirmation
"""


def serve(port: int) -> None:
    """The buyers: /ping/<n> answers a bid (slow for every tenth buyer), /post accepts."""
    from aiohttp import web

    async def ping(request: web.Request) -> web.Response:
        await request.read()
        if int(request.match_info["n"]) % SLOW_EVERY == 0:
            await asyncio.sleep(SLOW_S)
        return web.json_response({"bid": 1000 + int(request.match_info["n"])})

    async def post(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"accepted": True, "confirmation": "C-1"})

    app = web.Application()
    app.router.add_post("/ping/{n}", ping)
    app.router.add_post("/post", post)
    uvloop.install()
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def leads(count: int, seed: int) -> list[ev.Lead]:
    rng = random.Random(seed)
    vertical = load_verticals()["auto_loan"]
    out = []
    for n in range(count):
        checked = verify(vertical, make_consumer(rng))
        out.append(ev.Lead(lead_id=f"B{n:09d}", vertical="auto_loan", fields=checked.fields))
    return out


def adaptation_cost(sample: list[ev.Lead]) -> dict:
    out = {}
    for fmt in ("form", "json", "xml"):
        section = parse_rules(SECTION.format(fmt=fmt), "bench.rules", known_fields()).sections[f"bench-{fmt}"]
        views = [lead_view(lead, 1850) for lead in sample]
        started = time.perf_counter()
        for view in views:
            adapt_post(section, view)
        out[f"{fmt}_us_per_lead"] = round((time.perf_counter() - started) / len(views) * 1e6, 1)
    return out


async def bounded(items, concurrency: int, one) -> tuple[float, float]:
    """Run `one(item)` for every item, `concurrency` at a time; the elapsed seconds and this
    process's CPU seconds (the client's: the buyers are another process)."""
    slots = asyncio.Semaphore(concurrency)

    async def run(item):
        async with slots:
            await one(item)

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(run(item) for item in items))
    return time.perf_counter() - started, time.process_time() - cpu


def per_call_us(cpu_s: float, calls: int) -> float:
    return round(cpu_s / calls * 1e6, 1)


async def adapted_posts(port: int, sample: list[ev.Lead], concurrency: int) -> dict:
    section = parse_rules(SECTION.format(fmt="json"), "bench.rules", known_fields()).sections["bench-json"]
    client = BuyerClient(concurrency, 5.0, 5.0, LOCAL_BUYER_URLS)
    await client.start()
    buyer = BuyerAccount("b_bench", "bench", f"http://127.0.0.1:{port}/ping/1", f"http://127.0.0.1:{port}/post")
    accepted = 0

    async def one(lead: ev.Lead) -> None:
        nonlocal accepted
        closed = ev.AuctionClosed(auction_id=lead.lead_id, lead=lead)
        result = await client.post(buyer, closed, prepare_post(lead, 1850, section), section)
        accepted += result.accepted

    try:
        elapsed, cpu_s = await bounded(sample, concurrency, one)
    finally:
        await client.close()
    return {"posts": len(sample), "accepted": accepted, "posts_per_s": round(len(sample) / elapsed),
            "client_cpu_us_per_post": per_call_us(cpu_s, len(sample))}


async def ping_fanout(port: int, auctions: int, in_flight: int) -> dict:
    """Auctions `in_flight` at a time (the worker handles many auction.opened records at once),
    each pinging all 100 buyers concurrently through one client limited to 200 connections (the
    service's DELIVERY_MAX_CONCURRENT_REQUESTS)."""
    client = BuyerClient(200, 5.0, 5.0, LOCAL_BUYER_URLS)
    await client.start()
    buyers = [BuyerAccount(f"b{n}", f"buyer {n}", f"http://127.0.0.1:{port}/ping/{n}", "") for n in range(BUYERS)]
    bids, fast_latencies = 0, []

    async def ping(buyer: BuyerAccount, opened: ev.AuctionOpened):
        started = time.perf_counter()
        result = await client.ping(buyer, opened, 5.0)
        if buyer.id not in SLOW_IDS:
            fast_latencies.append(time.perf_counter() - started)
        return result

    async def auction(n: int) -> None:
        nonlocal bids
        opened = ev.AuctionOpened(auction_id=f"A{n:09d}", lead_id=f"A{n:09d}",
                                  ping=ev.PingSubset(vertical="auto_loan", zip="10001", state="NY"))
        results = await asyncio.gather(*(ping(buyer, opened) for buyer in buyers))
        bids += sum(r.bid_cents is not None for r in results)

    try:
        elapsed, cpu_s = await bounded(range(auctions), in_flight, auction)
    finally:
        await client.close()
    fast_latencies.sort()
    return {"auctions": auctions, "auctions_in_flight": in_flight, "pings": auctions * BUYERS, "bids": bids,
            "pings_per_s": round(auctions * BUYERS / elapsed),
            "client_cpu_us_per_ping": per_call_us(cpu_s, auctions * BUYERS),
            "fast_buyer_ping_p50_ms": round(fast_latencies[len(fast_latencies) // 2] * 1000, 1),
            "fast_buyer_ping_p99_ms": round(fast_latencies[int(len(fast_latencies) * 0.99)] * 1000, 1)}


async def paced_pings(port: int, auctions_per_s: int, seconds: float, buyers: int = 3) -> dict:
    """The load delivery meets in the whole (bench/sustained.py): auctions opened at a steady rate,
    each pinging a few fast buyers at once, so a call shares few loop wake-ups with others. The
    client's CPU a ping at that pace is what the whole pays."""
    client = BuyerClient(200, 5.0, 5.0, LOCAL_BUYER_URLS)
    await client.start()
    accounts = [BuyerAccount(f"b{n}", f"buyer {n}", f"http://127.0.0.1:{port}/ping/{n}", "")
                for n in range(1, buyers + 1)]  # never a slow one (every tenth from 0)
    total = int(auctions_per_s * seconds)
    loop, tasks, bids = asyncio.get_running_loop(), [], 0

    async def auction(n: int) -> None:
        nonlocal bids
        opened = ev.AuctionOpened(auction_id=f"P{n:09d}", lead_id=f"P{n:09d}",
                                  ping=ev.PingSubset(vertical="auto_loan", zip="10001", state="NY"))
        results = await asyncio.gather(*(client.ping(buyer, opened, 5.0) for buyer in accounts))
        bids += sum(r.bid_cents is not None for r in results)

    try:
        for n in range(20):  # connections opened and warm before the measure
            await auction(n)
        bids = 0
        started, cpu = loop.time(), time.process_time()
        for n in range(total):
            await asyncio.sleep(max(0.0, started + n / auctions_per_s - loop.time()))
            tasks.append(asyncio.create_task(auction(n)))
        await asyncio.gather(*tasks)
        cpu_s = time.process_time() - cpu
    finally:
        await client.close()
    return {"auctions_per_s": auctions_per_s, "buyers_an_auction": buyers, "pings": total * buyers,
            "bids": bids,  # every ping answered with a bid, or the CPU a ping is not a ping's
            "client_cpu_us_per_ping": per_call_us(cpu_s, total * buyers)}


async def bare_rates(port: int, requests: int, concurrency: int) -> dict:
    import aiohttp
    import httpx

    body = json.dumps({"lead_id": "B000000001", "zip": "10001"}).encode()
    url = f"http://127.0.0.1:{port}/post"
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits) as client:
        httpx_s, httpx_cpu_s = await bounded(
            range(requests), concurrency,
            lambda _: client.post(url, content=body, headers={"Content-Type": "application/json"}))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        async def one(_):
            async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as response:
                await response.read()

        aiohttp_s, aiohttp_cpu_s = await bounded(range(requests), concurrency, one)
    return {"httpx_posts_per_s": round(requests / httpx_s), "aiohttp_posts_per_s": round(requests / aiohttp_s),
            "httpx_cpu_us_per_post": per_call_us(httpx_cpu_s, requests),
            "aiohttp_cpu_us_per_post": per_call_us(aiohttp_cpu_s, requests)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posts", type=int, default=5_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--auctions", type=int, default=200, help="auctions, each pinging all 100 buyers")
    parser.add_argument("--auctions-in-flight", type=int, default=16)
    parser.add_argument("--paced-auctions-per-s", type=int, default=100,
                        help="auctions a second in the paced phase, each pinging three fast buyers")
    parser.add_argument("--paced-seconds", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve)
        return

    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    try:
        wait_for_port("127.0.0.1", port, 15, server)
        sample = leads(args.posts, args.seed)
        results = {"adaptation": adaptation_cost(sample)}
        print(json.dumps(results["adaptation"]), flush=True)
        results["baseline"] = uvloop.run(bare_rates(port, args.posts, args.concurrency))
        print(json.dumps(results["baseline"]), flush=True)
        results["adapted_posts"] = uvloop.run(adapted_posts(port, sample, args.concurrency))
        print(json.dumps(results["adapted_posts"]), flush=True)
        results["ping_fanout"] = uvloop.run(ping_fanout(port, args.auctions, args.auctions_in_flight))
        print(json.dumps(results["ping_fanout"]), flush=True)
        results["paced_pings"] = uvloop.run(paced_pings(port, args.paced_auctions_per_s, args.paced_seconds))
        print(json.dumps(results["paced_pings"]), flush=True)
    finally:
        server.terminate()
        server.wait(10)
    posts, base = results["adapted_posts"]["posts_per_s"], results["baseline"]
    print(f"\nadaptation: {results['adaptation']} µs per lead")
    print(f"adapted posts/s, one worker: {posts:,} vs bare httpx {base['httpx_posts_per_s']:,} "
          f"({posts / base['httpx_posts_per_s']:.2f}) and bare aiohttp {base['aiohttp_posts_per_s']:,} "
          f"({posts / base['aiohttp_posts_per_s']:.2f})")
    print(f"client CPU per post: {results['adapted_posts']['client_cpu_us_per_post']} µs (adaptation included) "
          f"vs bare httpx {base['httpx_cpu_us_per_post']} and bare aiohttp {base['aiohttp_cpu_us_per_post']} µs")
    fan = results["ping_fanout"]
    print(f"pings fanned out: {fan['pings_per_s']:,}/s to {BUYERS} buyers, 10% answering after {SLOW_S:.0f} s, "
          f"{fan['auctions_in_flight']} auctions at once; fast buyers' pings p50 {fan['fast_buyer_ping_p50_ms']} ms, "
          f"p99 {fan['fast_buyer_ping_p99_ms']} ms; client CPU {fan['client_cpu_us_per_ping']} µs a ping")
    paced = results["paced_pings"]
    print(f"paced pings: {paced['auctions_per_s']} auctions/s, {paced['buyers_an_auction']} buyers each: "
          f"client CPU {paced['client_cpu_us_per_ping']} µs a ping "
          f"({paced['bids']:,} bids of {paced['pings']:,} pings)")
    write_results(results, args, RESULTS, ROOT)


if __name__ == "__main__":
    main()
