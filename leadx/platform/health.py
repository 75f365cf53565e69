"""A minimal HTTP server for `/healthz`, `/readyz` and `/metrics` (Prometheus), on every service's
health port, apart from any HTTP the service serves to others.

Liveness answers while the event loop runs. Readiness asks every registered check (broker
connected, partitions assigned, ...) and answers 503 naming the ones that fail: an orchestrator
must not route to, or count as available, a replica that cannot do its work yet.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

from leadx.platform.metrics import exposition

log = logging.getLogger(__name__)


class Readiness:
    def __init__(self) -> None:
        self._checks: dict[str, Callable[[], bool]] = {}

    def add(self, name: str, check: Callable[[], bool]) -> None:
        self._checks[name] = check

    def failing(self) -> list[str]:
        failing = []
        for name, check in self._checks.items():
            try:
                ok = check()
            except Exception:  # a check that raises is simply not ready
                ok = False
            if not ok:
                failing.append(name)
        return failing

    def ready(self) -> bool:
        return not self.failing()


class HealthServer:
    def __init__(self, readiness: Readiness, port: int, host: str = "0.0.0.0") -> None:
        self.readiness = readiness
        self.port = port
        self.host = host
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await asyncio.wait_for(reader.readline(), timeout=5)
            while (await asyncio.wait_for(reader.readline(), timeout=5)) not in (b"\r\n", b"\n", b""):
                pass
            parts = request_line.decode("latin-1").split()
            path = parts[1] if len(parts) >= 2 else ""
            if path.split("?", 1)[0] == "/metrics":
                status, (payload, content_type) = "200 OK", exposition()
            else:
                status, body = self._answer(path)
                payload, content_type = json.dumps(body).encode(), "application/json"
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode() + payload
            )
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    def _answer(self, path: str) -> tuple[str, dict]:
        if path == "/healthz":
            return "200 OK", {"status": "ok"}
        if path == "/readyz":
            failing = self.readiness.failing()
            if failing:
                return "503 Service Unavailable", {"status": "not ready", "failing": failing}
            return "200 OK", {"status": "ready"}
        return "404 Not Found", {"error": "not found"}
