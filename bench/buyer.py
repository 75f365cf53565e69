"""A buyer for the benchmarks, in a process of its own: it bids `--bid` cents on every ping and
accepts every post. As small as a buyer's endpoint can be (Starlette on uvicorn, no checks, nothing
kept), so that its CPU per lead is the floor a real buyer adds, and it never slows the exchange.

    python bench/buyer.py --port 18001 --bid 1500
"""

from __future__ import annotations

import argparse

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

ACCEPTED = b'{"accepted": true, "confirmation": "C-bench"}'


def app(bid_cents: int) -> Starlette:
    bid = f'{{"bid": {bid_cents}}}'.encode()

    async def ping(request: Request) -> Response:
        await request.body()  # read whole, as a real buyer would before answering
        return Response(bid, media_type="application/json")

    async def post(request: Request) -> Response:
        await request.body()
        return Response(ACCEPTED, media_type="application/json")

    return Starlette(routes=[Route("/ping", ping, methods=["POST"]), Route("/post", post, methods=["POST"])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bid", type=int, required=True, help="cents")
    args = parser.parse_args()
    uvicorn.run(app(args.bid), host="127.0.0.1", port=args.port, log_level="warning", access_log=False,
                lifespan="off")


if __name__ == "__main__":
    main()
