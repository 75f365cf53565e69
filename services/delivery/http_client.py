"""The HTTP/1.1 client delivery's buyer calls go out on: a POST and its answer, on a pooled
keep-alive connection, plain or TLS, parsed by httptools (the C parser the intake's server uses).

Why not aiohttp, which this replaced: measured beside a running exchange (three buyers, 100 leads
a second), an aiohttp POST cost about 0.43 ms of CPU in Python around the socket and an asyncio
protocol with httptools about 0.21, and delivery makes four calls a sold lead. This client does
only what buyer calls need, and keeps every rule they depend on:

- an address is connected to only after `resolve` (the checked resolver, buyer_http) has judged
  every address a name gives; a host written as an address is judged by the caller;
- a reply is read no further than `limit` bytes (one more says it went on), its head no further
  than HEAD_MAX_BYTES: a buyer cannot make a worker hold more;
- redirects are answers (nothing is followed);
- the whole call, waiting for a connection included, ends at its timeout;
- a connection idle `keepalive_s` is not used again (buyer_http.KEEPALIVE_S says why), and one that
  ended badly (a timeout, a reply cut, an answer not understood) is closed, never pooled.

A failure says how far the call got, because whether a post may be sent again depends on it:
NotConnected (nothing was sent), ConnectionLost (the connection ended before a whole answer;
`answered_nothing` and `reused` tell a stale pooled connection from a buyer who dropped the call),
BadAnswer (the buyer answered something that is not HTTP).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import cast

import httptools
from yarl import URL

HEAD_MAX_BYTES = 64 * 1024  # an answer's status line and headers
USER_AGENT = "leadx-delivery"
DEFAULT_PORTS = {"http": 80, "https": 443}

Resolve = Callable[[str, int], Awaitable[list[str]]]  # a name and port to the addresses to try


@dataclass(frozen=True)
class Answer:
    """A buyer's HTTP answer as delivery keeps it."""

    status: int
    body: bytes  # at most the reply limit
    cut: bool  # the reply went on past the limit; the rest was not read
    location: str  # where a redirect pointed

    @property
    def redirected(self) -> bool:
        return 300 <= self.status < 400


class CallError(Exception):
    """A buyer call that got no answer."""


class NotConnected(CallError):
    """No connection was made: nothing was sent. `retryable` is False when trying again cannot
    help (the address is refused by the buyer URL rules, the request cannot be written)."""

    def __init__(self, cause: BaseException, retryable: bool = True) -> None:
        super().__init__(str(cause) or type(cause).__name__)
        self.cause, self.retryable = cause, retryable


class ConnectionLost(CallError):
    """The connection ended before a whole answer. `answered_nothing`: not one byte came back;
    `reused`: the call went out on a pooled connection. Both together are a connection the buyer's
    server was closing as the call arrived (buyer_http._stale)."""

    def __init__(self, detail: str, answered_nothing: bool, reused: bool) -> None:
        super().__init__(detail)
        self.answered_nothing, self.reused = answered_nothing, reused


class BadAnswer(CallError):
    """What came back is not an HTTP answer this client reads (or its head is over HEAD_MAX_BYTES)."""


class _Connection(asyncio.Protocol):
    """One connection to a buyer, carrying one call at a time; httptools calls the on_* methods
    as it parses what arrives."""

    def __init__(self, key: tuple[str, str, int]) -> None:
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reused = False
        self.idle_since = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._answer: asyncio.Future[Answer] | None = None
        self._limit = 0
        self._start_answer()

    def _start_answer(self) -> None:
        self._status = 0
        self._body = bytearray()
        self._location = ""
        self._head_done = False
        self._head_bytes = 0
        self._delimited = False  # a Content-Length or chunked: the end is known without the close
        self._keep_alive = False  # a whole answer, after which the server keeps the connection open
        self._received = 0

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no asyncio.Transport subclass

    def data_received(self, data: bytes) -> None:
        if self._answer is None or self._answer.done():  # nothing asked: the connection is not to be trusted
            self.close()
            return
        self._received += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(BadAnswer(f"not an HTTP answer ({error})"))
            return
        if not self._head_done and self._received > HEAD_MAX_BYTES:  # a head still going on
            self._fail(BadAnswer(f"the answer's head went on past {HEAD_MAX_BYTES} bytes"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._answer is None or self._answer.done():
            return
        if self._head_done and not self._delimited:  # an answer whose end is the connection's close
            self._answer.set_result(self._finished(cut=False))
            return
        self._answer.set_exception(ConnectionLost(
            f"the connection ended {'before an answer' if self._received == 0 else 'within the answer'}"
            + (f" ({exc})" if exc else ""), self._received == 0, self.reused))

    # httptools' callbacks

    def on_message_begin(self) -> None:
        if self._answer is None or self._answer.done():  # an answer nobody asked for, after the one read
            self.close()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value) + 4
        name = name.lower()
        if name == b"location":
            self._location = value.decode("latin-1")
        elif name in (b"content-length", b"transfer-encoding"):
            self._delimited = True

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()
        self._head_done = True
        if self._head_bytes > HEAD_MAX_BYTES:  # a long head that arrived whole in one read
            self._fail(BadAnswer(f"the answer's head went on past {HEAD_MAX_BYTES} bytes"))

    def on_body(self, body: bytes) -> None:
        if self._answer is None or self._answer.done():
            return
        self._body += body[:self._limit + 1 - len(self._body)]
        if len(self._body) > self._limit:  # the rest is not read: the connection goes with it
            self._answer.set_result(self._finished(cut=True))
            self.close()

    def on_message_complete(self) -> None:
        if self._answer is None or self._answer.done():
            return
        if self._status < 200:  # an interim answer (103 Early Hints): the real one follows
            received = self._received  # the buyer has answered something: a loss now is no stale connection
            self._start_answer()
            self._received = received
            return
        self._keep_alive = self._parser.should_keep_alive()  # read here: the parser forgets it after
        self._answer.set_result(self._finished(cut=False))

    # the call

    def _finished(self, cut: bool) -> Answer:
        return Answer(self._status, bytes(self._body[:self._limit]), cut, self._location)

    def _fail(self, error: CallError) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(error)
        self.close()

    async def exchange(self, request: bytes, limit: int) -> Answer:
        """Send the request and wait for its answer (the caller bounds the wait)."""
        assert self.transport is not None
        self._answer, self._limit = asyncio.get_running_loop().create_future(), limit
        self._start_answer()
        if self.closed or self.transport.is_closing():  # closed by the buyer while idle in the pool
            raise ConnectionLost("the connection had ended before the call", True, self.reused)
        self.transport.write(request)
        return await self._answer

    def reusable(self) -> bool:
        return not self.closed and self._keep_alive

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def _request(url: URL, body: bytes, headers: dict[str, str]) -> bytes:
    host = url.raw_host or ""
    if ":" in host:
        host = f"[{host}]"
    if url.port != DEFAULT_PORTS[url.scheme]:
        host = f"{host}:{url.port}"
    lines = [f"POST {url.raw_path_qs} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}",
             f"User-Agent: {USER_AGENT}", "Accept: */*"]
    for name, value in headers.items():
        if not name or any(c in name or c in value for c in "\r\n\0") or ":" in name:
            raise NotConnected(ValueError(f"the header {name!r} cannot be written"), retryable=False)
        lines.append(f"{name}: {value}")
    try:
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
    except UnicodeEncodeError as error:  # HTTP/1.1 heads are Latin-1
        raise NotConnected(ValueError(f"a header cannot be written in Latin-1 ({error.reason})"),
                           retryable=False) from error


class ConnectionPool:
    """Keep-alive connections by scheme, host and port; at most `limit` calls at a time."""

    def __init__(self, limit: int, keepalive_s: float, resolve: Resolve, tls: ssl.SSLContext | None = None) -> None:
        self.keepalive_s = keepalive_s
        self._resolve = resolve
        self._tls = tls
        self._slots = asyncio.Semaphore(limit)  # bound to a loop only when first waited on
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._open: set[_Connection] = set()
        self._swept = time.monotonic()

    async def post(self, url: URL, body: bytes, headers: dict[str, str], timeout_s: float,
                   limit: int, new_connection: bool = False) -> Answer:
        """POST `body` to `url` and read at most `limit` bytes of the answer, within `timeout_s`
        in all; on a new connection when `new_connection` (a call sent again after a stale one)."""
        if url.scheme not in DEFAULT_PORTS:
            raise NotConnected(ValueError(f"{url.scheme or 'no'} scheme: only http and https are called"),
                               retryable=False)
        request = _request(url, body, headers)
        async with asyncio.timeout(timeout_s), self._slots:
            connection = None if new_connection else self._pooled((url.scheme, url.raw_host or "", url.port or 0))
            if connection is None:
                connection = await self._connect(url)
            try:
                answer = await connection.exchange(request, limit)
            except BaseException:  # a timeout, a cancel, a failure: the connection is in an unknown state
                self._discard(connection)
                raise
        self._release(connection)
        return answer

    def _pooled(self, key: tuple[str, str, int]) -> _Connection | None:
        idle, now = self._idle.get(key), time.monotonic()
        while idle:
            connection = idle.pop()  # the most recently used: the least likely to be closing
            if self._usable(connection, now):
                connection.reused = True
                return connection
            self._discard(connection)
        return None

    async def _connect(self, url: URL) -> _Connection:
        """A new connection to the first of the host's addresses that takes one."""
        host, port = url.raw_host or "", url.port or 0
        key = (url.scheme, host, port)
        tls = None
        if url.scheme == "https":
            tls = self._tls or ssl.create_default_context()
            self._tls = tls
        try:
            addresses = await self._resolve(host, port)
        except OSError as error:  # the name does not resolve
            raise NotConnected(error) from error
        loop, failure = asyncio.get_running_loop(), None
        for address in addresses:
            try:
                _, connection = await loop.create_connection(
                    lambda: _Connection(key), address, port, ssl=tls, server_hostname=host if tls else None)
            except OSError as error:  # refused, unreachable, a certificate not trusted: try the next
                failure = error
                continue
            self._open.add(connection)
            return connection
        raise NotConnected(failure or OSError(f"{host} resolved to no address"))

    def _release(self, connection: _Connection) -> None:
        if not connection.reusable():
            self._discard(connection)
            return
        connection.idle_since = time.monotonic()
        self._idle.setdefault(connection.key, []).append(connection)
        if connection.idle_since - self._swept > self.keepalive_s:
            self._sweep(connection.idle_since)

    def _sweep(self, now: float) -> None:
        """Close connections idle past the keep-alive, for buyers not called since."""
        self._swept = now
        for key, idle in list(self._idle.items()):
            kept = [c for c in idle if self._usable(c, now)]
            for connection in idle:
                if connection not in kept:
                    self._discard(connection)
            if kept:
                self._idle[key] = kept
            else:
                del self._idle[key]

    def _usable(self, connection: _Connection, now: float) -> bool:
        """Open, and idle less than the keep-alive."""
        return not connection.closed and now - connection.idle_since < self.keepalive_s

    def _discard(self, connection: _Connection) -> None:
        connection.close()
        self._open.discard(connection)

    async def close(self) -> None:
        for connection in list(self._open):
            self._discard(connection)
        self._idle.clear()
        await asyncio.sleep(0)  # let the transports finish closing
