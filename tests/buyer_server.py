"""A real HTTP server standing in for a buyer or a dealer (the one third party the tests cannot own):
it records what it is posted and answers as told."""

from __future__ import annotations

import asyncio

from aiohttp import web

from leadx.dev.stack import free_port


class BuyerServer:
    """POSTs to /post are recorded (headers and body) and answered `{"accepted": accept}` with
    `status`, after `delay_s`. Use as `async with BuyerServer() as buyer:`; `port` picks the port
    (a buyer that was unreachable there comes back), else a free one is taken."""

    def __init__(self, accept: bool = True, status: int = 200, delay_s: float = 0.0, port: int | None = None) -> None:
        self.accept, self.status, self.delay_s = accept, status, delay_s
        self.port = port or free_port()
        self.posts: list[tuple[dict, bytes]] = []

    @property
    def received(self) -> int:
        return len(self.posts)

    async def handle(self, request: web.Request) -> web.Response:
        self.posts.append((dict(request.headers), await request.read()))
        await asyncio.sleep(self.delay_s)
        return web.json_response({"accepted": self.accept}, status=self.status)

    async def __aenter__(self) -> BuyerServer:
        app = web.Application()
        app.router.add_post("/post", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.runner.cleanup()
