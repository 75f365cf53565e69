"""A real HTTP server playing any number of buyers, each with its own ping and post URL.

Each buyer's behaviour (its bid, whether it accepts posted leads) can be changed while it runs,
and every ping and post it receives is recorded, so tests can assert what a buyer actually got.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from leadx.delivery.buyer_auth import verify
from leadx.dev.stack import free_port, wait_for_port


@dataclass
class BuyerBehaviour:
    # The bid in cents for a ping (None: no bid); a callable gets the ping body.
    bid: int | None | Callable[[dict], int | None] = 1000
    accept: bool | Callable[[dict], bool] = True
    pings: list[dict] = field(default_factory=list)
    posts: list[dict] = field(default_factory=list)
    replies_in_text: bool = False  # "ACCEPTED ref=..." / "REJECTED: ..." instead of JSON
    refused: int = 0  # posts refused as unauthorised
    failures_served: int = 0  # posts answered with post_status >= 500
    authorization: str | None = None  # the Authorization header it demands (basic, bearer)
    hmac_secret: str | None = None  # demands a valid X-Leadx-Signature made with this secret
    post_delay_s: float = 0.0  # answers posts this late (timeouts)
    post_status: int = 200  # answers posts with this status (500: a failing buyer)
    # Every post's raw body as it reached the server, before any delay: a test can tell a post the
    # buyer is holding from one that never left the exchange.
    arrivals: list[bytes] = field(default_factory=list)

    def authorised(self, request: Request, body: bytes) -> bool:
        if self.authorization is not None and request.headers.get("authorization") != self.authorization:
            return False
        if self.hmac_secret is not None:
            return verify(self.hmac_secret, body, request.headers.get("x-leadx-signature", ""), time.time())
        return True

    def bid_for(self, ping: dict) -> int | None:
        return self.bid(ping) if callable(self.bid) else self.bid

    def accepts(self, lead: dict) -> bool:
        return self.accept(lead) if callable(self.accept) else self.accept


def random_behaviour(rng: random.Random, low: int, high: int, accept_rate: float) -> BuyerBehaviour:
    """A demo buyer: bids sometimes, within a range, and accepts most posted leads."""
    return BuyerBehaviour(
        bid=lambda _ping: rng.randrange(low, high, 25) if rng.random() < 0.8 else None,
        accept=lambda _lead: rng.random() < accept_rate,
    )


class BuyerServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.buyers: dict[str, BuyerBehaviour] = {}
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def add(self, name: str, behaviour: BuyerBehaviour | None = None) -> BuyerBehaviour:
        self.buyers[name] = behaviour or BuyerBehaviour()
        return self.buyers[name]

    def ping_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/buyers/{name}/ping"

    def post_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/buyers/{name}/post"

    def _app(self) -> Starlette:
        async def ping(request: Request) -> JSONResponse:
            buyer = self.buyers.get(request.path_params["name"])
            if buyer is None:
                return JSONResponse({"error": "unknown buyer"}, status_code=404)
            raw = await request.body()
            if not buyer.authorised(request, raw):
                return JSONResponse({"error": "unauthorised"}, status_code=401)
            body = json.loads(raw)
            with self._lock:
                buyer.pings.append(body)
            bid = buyer.bid_for(body)
            return JSONResponse({"bid": bid} if bid is not None else {"bid": None})

        async def post(request: Request) -> Response:
            buyer = self.buyers.get(request.path_params["name"])
            if buyer is None:
                return JSONResponse({"error": "unknown buyer"}, status_code=404)
            content_type = request.headers.get("content-type", "")
            raw = await request.body()
            with self._lock:
                buyer.arrivals.append(raw)
            if buyer.post_delay_s:
                await asyncio.sleep(buyer.post_delay_s)
            if not buyer.authorised(request, raw):
                with self._lock:
                    buyer.refused += 1
                return JSONResponse({"accepted": False, "error": "unauthorised"}, status_code=401)
            if buyer.post_status >= 500:
                with self._lock:
                    buyer.failures_served += 1
                return JSONResponse({"error": "internal error"}, status_code=buyer.post_status)
            if "json" in content_type:
                body = json.loads(raw)
            elif "x-www-form-urlencoded" in content_type:
                body = dict(parse_qsl(raw.decode(), keep_blank_values=True))
            else:  # XML and anything else: kept as it came, for the test to read
                body = {}
            body["_raw"], body["_content_type"] = raw.decode(), content_type
            body["_idempotency_key"] = request.headers.get("idempotency-key")
            with self._lock:
                buyer.posts.append(body)
            accepted = buyer.accepts(body)
            reference = f"C-{body.get('lead_id') or len(buyer.posts)}"
            if buyer.replies_in_text:  # a buyer with its own reply format (read by POST rules)
                return PlainTextResponse(f"ACCEPTED ref={reference}" if accepted else "REJECTED: not for us")
            return JSONResponse({"accepted": accepted, "confirmation": reference if accepted else None})

        return Starlette(routes=[Route("/buyers/{name}/ping", ping, methods=["POST"]),
                                 Route("/buyers/{name}/post", post, methods=["POST"])])

    def start(self) -> None:
        config = uvicorn.Config(self._app(), host="127.0.0.1", port=self.port, log_level="warning",
                                access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="buyers", daemon=True)
        self._thread.start()
        wait_for_port("127.0.0.1", self.port, 10)

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(10)

    def wait_for_posts(self, name: str, count: int, timeout_s: float = 30) -> list[dict]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if len(self.buyers[name].posts) >= count:
                return self.buyers[name].posts
            time.sleep(0.05)
        raise TimeoutError(f"buyer {name} got {len(self.buyers[name].posts)} posts, expected {count}")
