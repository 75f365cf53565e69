"""The HTTP/1.1 client buyer calls go out on (services.delivery.http_client), against real local
servers: a scripted one that answers with the bytes it is given, so that every way an answer can
end is met, and a TLS one with a throwaway CA."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable

import pytest
from yarl import URL

from leadx.accounts.buyer_urls import BuyerUrlRules
from leadx.auction.selection.market import BuyerAccount
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.delivery.post_adaptation import prepare_post
from leadx.dev.stack import free_port
from services.delivery.buyer_http import BuyerClient, CheckedResolver
from services.delivery.http_client import (
    HEAD_MAX_BYTES,
    Answer,
    BadAnswer,
    ConnectionLost,
    ConnectionPool,
    NotConnected,
)
from tests.buyer_server import BuyerServer
from tests.certificates import TestCA

DEVELOPMENT = BuyerUrlRules(allow_private=True)


def reply(body: bytes, *head: bytes, status: bytes = b"200 OK") -> bytes:
    return b"HTTP/1.1 " + status + b"\r\n" + b"".join(h + b"\r\n" for h in head) + b"\r\n" + body


OK = reply(b'{"accepted": true}', b"Content-Type: application/json", b"Content-Length: 18")


class ScriptedServer:
    """Reads each request whole (head and Content-Length body) and writes what `answer(n)` gives
    for the n-th request (0-based), closing the connection after it when `close_after(n)`.
    Counts connections and keeps the raw requests."""

    def __init__(self, answer: Callable[[int], bytes], close_after: Callable[[int], bool] = lambda n: False,
                 tls: ssl.SSLContext | None = None) -> None:
        self.answer, self.close_after, self.tls = answer, close_after, tls
        self.requests: list[bytes] = []
        self.connections = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length"))
                number = len(self.requests)
                self.requests.append(head + await reader.readexactly(length))
                writer.write(self.answer(number))
                await writer.drain()
                if self.close_after(number):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    async def __aenter__(self) -> ScriptedServer:
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc) -> None:
        self.server.close()


def pool(keepalive_s: float = 4.0, tls: ssl.SSLContext | None = None) -> ConnectionPool:
    return ConnectionPool(4, keepalive_s, CheckedResolver(DEVELOPMENT).resolve, tls)


async def post(server: ScriptedServer, calls: int = 1, limit: int = 1000, keepalive_s: float = 4.0,
               pause_s: float = 0.0, path: str = "/bid?buyer=b1") -> list[Answer | Exception]:
    connections = pool(keepalive_s)
    results: list[Answer | Exception] = []
    try:
        for _ in range(calls):
            try:
                results.append(await connections.post(URL(f"http://127.0.0.1:{server.port}{path}"), b'{"a": 1}',
                                                      {"X-Key": "k"}, 2.0, limit))
            except Exception as error:  # noqa: BLE001 (the test reads which)
                results.append(error)
            await asyncio.sleep(pause_s)
    finally:
        await connections.close()
    return results


def test_a_request_is_written_as_http_1_1_and_calls_share_a_kept_alive_connection():
    async def scenario():
        async with ScriptedServer(lambda n: OK) as server:
            return await post(server, calls=3), server

    answers, server = asyncio.run(scenario())
    assert answers == [Answer(200, b'{"accepted": true}', False, "")] * 3
    assert server.connections == 1  # one connection, kept alive between the calls
    head, body = server.requests[0].split(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /bid?buyer=b1 HTTP/1.1" and body == b'{"a": 1}'
    assert {b"Host: 127.0.0.1:%d" % server.port, b"Content-Length: 8", b"X-Key: k"} <= set(lines)


def test_a_connection_idle_past_the_keep_alive_is_not_used_again():
    async def scenario():
        async with ScriptedServer(lambda n: OK) as server:
            return await post(server, calls=2, keepalive_s=0.2, pause_s=0.3), server

    answers, server = asyncio.run(scenario())
    assert all(isinstance(a, Answer) and a.status == 200 for a in answers)
    assert server.connections == 2


def test_an_answer_that_the_server_marks_last_closes_its_connection():
    async def scenario():
        answer = reply(b"{}", b"Content-Length: 2", b"Connection: close")
        async with ScriptedServer(lambda n: answer) as server:
            return await post(server, calls=2), server

    answers, server = asyncio.run(scenario())
    assert [a.body for a in answers if isinstance(a, Answer)] == [b"{}", b"{}"] and server.connections == 2


def test_answers_ended_by_the_close_chunked_or_after_an_interim_answer_are_read_whole():
    by_close = reply(b'{"bid": 700}', b"Content-Type: application/json")
    chunked = reply(b"5\r\n{\"bid\r\n7\r\n\": 800}\r\n0\r\n\r\n", b"Transfer-Encoding: chunked")
    interim = reply(b"", b"Link: </x>", status=b"103 Early Hints") + reply(b'{"bid": 900}', b"Content-Length: 12")
    no_content = reply(b"", status=b"204 No Content")

    async def scenario(answer: bytes, close: bool):
        async with ScriptedServer(lambda n: answer, close_after=lambda n: close) as server:
            return (await post(server))[0]

    assert asyncio.run(scenario(by_close, True)) == Answer(200, b'{"bid": 700}', False, "")
    assert asyncio.run(scenario(chunked, False)) == Answer(200, b'{"bid": 800}', False, "")
    assert asyncio.run(scenario(interim, False)) == Answer(200, b'{"bid": 900}', False, "")
    assert asyncio.run(scenario(no_content, False)) == Answer(204, b"", False, "")


def test_a_redirect_is_an_answer_with_its_location():
    answer = reply(b"", b"Location: https://elsewhere.example/x", b"Content-Length: 0",
                   status=b"307 Temporary Redirect")

    async def scenario():
        async with ScriptedServer(lambda n: answer) as server:
            return (await post(server))[0], server

    got, server = asyncio.run(scenario())
    assert isinstance(got, Answer) and got.redirected and got.location == "https://elsewhere.example/x"
    assert len(server.requests) == 1  # nothing followed


@pytest.mark.parametrize("chunked", [False, True])
def test_a_reply_over_the_limit_is_cut_and_its_connection_not_kept(chunked):
    body = b"x" * 5000
    answer = (reply(b"1388\r\n" + body + b"\r\n0\r\n\r\n", b"Transfer-Encoding: chunked") if chunked
              else reply(body, b"Content-Length: 5000"))

    async def scenario():
        async with ScriptedServer(lambda n: answer) as server:
            return await post(server, calls=2, limit=100), server

    answers, server = asyncio.run(scenario())
    assert answers == [Answer(200, b"x" * 100, True, "")] * 2
    assert server.connections == 2  # the unread rest went with its connection


@pytest.mark.parametrize(("answer", "message"), [
    (b"SSH-2.0-OpenSSH_9.6\r\n", "not an HTTP answer"),
    (b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"p" * HEAD_MAX_BYTES + b"\r\n\r\n", "head went on past"),
    (b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"p" * HEAD_MAX_BYTES * 2, "head went on past"),  # never ending
], ids=["not HTTP", "a long head", "a head that never ends"])
def test_what_is_not_an_http_answer_is_a_bad_answer(answer, message):
    async def scenario():
        async with ScriptedServer(lambda n: answer) as server:
            return (await post(server))[0]

    got = asyncio.run(scenario())
    assert isinstance(got, BadAnswer) and message in str(got)


def test_an_answer_nobody_asked_for_closes_the_connection_it_came_on():
    twice = OK + OK  # two answers to one request: the connection cannot be trusted with another call

    async def scenario():
        async with ScriptedServer(lambda n: twice) as server:
            return await post(server, calls=2), server

    answers, server = asyncio.run(scenario())
    assert answers == [Answer(200, b'{"accepted": true}', False, "")] * 2 and server.connections == 2


def test_a_connection_dropped_within_the_answer_is_lost_not_answered():
    partial = reply(b'{"acc', b"Content-Length: 18")

    async def scenario():
        async with ScriptedServer(lambda n: partial, close_after=lambda n: True) as server:
            return (await post(server))[0]

    got = asyncio.run(scenario())
    assert isinstance(got, ConnectionLost) and not got.answered_nothing and not got.reused


def test_a_connection_dropped_after_an_interim_answer_on_a_pooled_connection_is_not_sent_again():
    """A buyer that answered 103 and then dropped the call has its request: no second copy."""
    interim = reply(b"", b"Link: </x>", status=b"103 Early Hints")

    async def scenario():
        answers = {0: OK, 1: interim}
        async with ScriptedServer(lambda n: answers[n], close_after=lambda n: n == 1) as server:
            connections = pool()
            url = URL(f"http://127.0.0.1:{server.port}/post")
            try:
                first = await connections.post(url, b"{}", {}, 2.0, 1000)
                with pytest.raises(ConnectionLost) as lost:
                    await connections.post(url, b"{}", {}, 2.0, 1000)  # on the first's pooled connection
            finally:
                await connections.close()
            return first, lost.value, server

    first, lost, server = asyncio.run(scenario())
    assert first.status == 200 and server.connections == 1 and len(server.requests) == 2
    assert lost.reused and not lost.answered_nothing


@pytest.mark.parametrize("header", [{"X-Sig": "a\r\nX-Injected: 1"}, {"X-Sig\n": "a"}, {"X:Sig": "a"},
                                    {"X-Sig": "caf\u00e9 \u2713"}, {"": "a"}],
                         ids=["CRLF", "LF in a name", "colon", "not Latin-1", "no name"])
def test_a_header_that_cannot_be_written_is_not_sent(header):
    async def scenario():
        async with ScriptedServer(lambda n: OK) as server:
            connections = pool()
            try:
                with pytest.raises(NotConnected) as refused:
                    await connections.post(URL(f"http://127.0.0.1:{server.port}/"), b"{}", header, 2.0, 1000)
            finally:
                await connections.close()
            return refused.value, server

    refused, server = asyncio.run(scenario())
    assert not refused.retryable and "cannot be written" in str(refused) and server.requests == []
    assert server.connections == 0


def test_the_whole_call_ends_at_its_timeout_waiting_for_a_connection_included():
    async def scenario():
        async with BuyerServer(delay_s=1.0) as buyer:
            connections = ConnectionPool(1, 4.0, CheckedResolver(DEVELOPMENT).resolve)
            url = URL(f"http://127.0.0.1:{buyer.port}/post")
            try:
                first = asyncio.create_task(connections.post(url, b"{}", {}, 2.0, 1000))
                await asyncio.sleep(0.05)
                started = asyncio.get_running_loop().time()
                with pytest.raises(TimeoutError):  # the one connection is busy for a second
                    await connections.post(url, b"{}", {}, 0.3, 1000)
                waited = asyncio.get_running_loop().time() - started
                return await first, waited, buyer.received
            finally:
                await connections.close()

    first, waited, received = asyncio.run(scenario())
    assert first.status == 200 and received == 1 and waited < 0.9


def test_a_buyer_over_tls_is_called_with_its_certificate_checked(tmp_path):
    ca = TestCA(tmp_path)
    issued = ca.server()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(issued.cert, issued.key)
    trusting = ssl.create_default_context(cafile=str(ca.cert))
    closed = ev.AuctionClosed(auction_id="A1", lead=ev.Lead(lead_id="L1", fields={"zip": "10001"}))

    async def scenario(tls: ssl.SSLContext | None, host: str):
        async with ScriptedServer(lambda n: OK, tls=server_tls) as server:
            client = BuyerClient(4, 2.0, 2.0, DEVELOPMENT, tls=tls)
            await client.start()
            try:
                url = f"https://{host}:{server.port}/post"
                return await client.post(BuyerAccount("b1", "one", url, url), closed,
                                         prepare_post(closed.lead, 100, None)), server.requests
            finally:
                await client.close()

    trusted, sent = asyncio.run(scenario(trusting, "127.0.0.1"))
    assert trusted.accepted and trusted.status == 200 and len(sent) == 1
    by_name, _ = asyncio.run(scenario(trusting, "localhost"))  # checked against the name called
    assert by_name.accepted
    untrusted, sent = asyncio.run(scenario(None, "127.0.0.1"))  # the system's CAs do not know the test CA
    assert not untrusted.accepted and not untrusted.reached and sent == []
    assert untrusted.detail == "not reached: SSLCertVerificationError" and untrusted.connects == 3


def test_a_name_that_does_not_resolve_and_a_port_nobody_listens_on_are_not_connected():
    async def scenario(url: str):
        connections = pool()
        try:
            await connections.post(URL(url), b"{}", {}, 2.0, 1000)
        except NotConnected as error:
            return error
        finally:
            await connections.close()

    unresolved = asyncio.run(scenario("http://no-such-buyer.invalid/post"))
    refused = asyncio.run(scenario(f"http://127.0.0.1:{free_port()}/post"))
    assert unresolved.retryable and isinstance(unresolved.cause, OSError)
    assert refused.retryable and isinstance(refused.cause, ConnectionRefusedError)
