"""`leadx run`'s demo seller against a real HTTP server that answers badly: a timeout, a refused
connection, a 4xx or 5xx and a body that is not JSON are each printed as one line, and the seller
goes on with its next lead instead of ending the demo."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from leadx.dev.demo import exchange
from leadx.dev.stack import free_port


class ScriptedIntake(BaseHTTPRequestHandler):
    """Answers each request with the next (status, body, delay) of the server's script."""

    def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.paths.append(self.path)  # type: ignore[attr-defined]
        status, body, delay_s = self.server.script.pop(0)  # type: ignore[attr-defined]
        time.sleep(delay_s)
        payload = body.encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            pass  # the seller gave up waiting

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def intake():
    server = ThreadingHTTPServer(("127.0.0.1", 0), ScriptedIntake)
    server.script, server.paths = [], []  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def sell(url: str, leads: int, monkeypatch) -> int:
    monkeypatch.setattr(exchange, "SELLER_TIMEOUT_S", 0.5)
    monkeypatch.setattr(exchange, "ERROR_PAUSE_S", 0.01)
    return asyncio.run(exchange.sell_demo_leads(url, "lx_test", leads, rate=100, seed=1, stop=asyncio.Event()))


def test_bad_answers_are_printed_one_line_each_and_the_seller_goes_on(intake, monkeypatch, capsys):
    accepted_ping = json.dumps({"status": "accepted", "wanted": True, "ping_token": "tok"})
    intake.script = [
        (200, "<html>not json</html>", 0),  # lead 1's PING: a body it cannot use
        (429, json.dumps({"status": "error", "errors": [{"code": "RATE_LIMITED"}]}), 0),  # lead 2's POST
        (200, accepted_ping, 1.5),  # lead 3's PING: no answer within the seller's timeout
        (503, json.dumps({"status": "error"}), 0),  # lead 4's POST
        (409, json.dumps({"status": "duplicate", "lead_id": "L5"}), 0),  # lead 5 repeats a consumer: POST only
        (202, json.dumps({"status": "pending", "lead_id": "L6"}), 0),  # lead 6's POST
        (200, accepted_ping, 0), (200, json.dumps({"status": "accepted", "lead_id": "L7"}), 0),  # lead 7
    ]
    assert sell(f"http://127.0.0.1:{intake.server_port}", 7, monkeypatch) == 7
    out = capsys.readouterr().out.splitlines()
    failures = [line for line in out if "going on with the next lead" in line]
    assert failures == [
        "seller  PING: HTTP 200 '<html>not json</html>'; going on with the next lead",
        "seller  POST: HTTP 429 '{\"status\": \"error\", \"errors\": [{\"code\": \"RATE_LIMITED\"}]}';"
        " going on with the next lead",
        "seller  PING: no answer within 0.5s; going on with the next lead",
        "seller  POST: HTTP 503 '{\"status\": \"error\"}'; going on with the next lead",
    ]
    # The duplicate's 409 is an answer, not a failure; lead 7 was PINGed, accepted and POSTed.
    assert intake.paths == ["/v1/ping", "/v1/post", "/v1/ping", "/v1/post", "/v1/post", "/v1/post", "/v1/ping",
                            "/v1/post"]
    assert "seller  PING zip" in out[-1] and out[-1].endswith(": accepted, wanted")


def test_a_refused_connection_is_printed_and_every_lead_is_still_tried(monkeypatch, capsys):
    nobody = free_port()  # nothing listens there
    assert sell(f"http://127.0.0.1:{nobody}", 3, monkeypatch) == 3
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3 and all(line.startswith(("seller  PING: ConnectError", "seller  POST: ConnectError"))
                                 and line.endswith("; going on with the next lead") for line in out), out
