"""The homes' live streams (services.portal.live): where the buyer's starts, what its events say, and
that a part of the page goes again only when it changed."""

from __future__ import annotations

import json

from starlette.requests import Request

from leadx.contracts.dashboard.v1 import dashboard_pb2 as pb
from services.portal.live import FragmentsSent, _event, _since


def request(query: str = "", last_event_id: str = "") -> Request:
    headers = [(b"last-event-id", last_event_id.encode())] if last_event_id else []
    return Request({"type": "http", "method": "GET", "path": "/buyer/live", "query_string": query.encode(),
                    "headers": headers})


def test_a_reconnecting_browser_s_last_event_id_comes_before_the_page_s_newest_sale():
    assert _since(request("since=1796400000000")) == 1796400000000
    assert _since(request("since=1796400000000", last_event_id="1796400009999")) == 1796400009999
    # Anything else is no starting point: the stream then sends the buyer's newest purchases.
    for query, header in (("", ""), ("since=yesterday", ""), ("since=-5", "x"), ("since=" + "9" * 17, "")):
        assert _since(request(query, header)) == 0


def test_an_event_names_the_lead_and_says_its_price_and_time_as_the_page_does():
    sale = pb.Sale(lead_id="Q8ZK2M4T1B", buyer_id="b_1", price_cents=245_075, vertical="auto_loan", state="NY",
                   closed_at_ms=1_796_400_000_000)
    text = _event(sale, 1_796_400_000_000)
    assert text.startswith("event: bought\nid: 1796400000000\ndata: ") and text.endswith("\n\n")
    data = json.loads(text.split("data: ", 1)[1])
    assert data == {"lead_id": "Q8ZK2M4T1B", "price": "$2,450.75", "vertical": "auto_loan", "state": "NY",
                    "bought": "2026-12-04 16:00 UTC"}
    assert "b_1" not in text  # the buyer knows who it is; nothing else about the sale leaves


def test_a_part_of_the_page_is_sent_when_first_read_and_then_only_when_it_changed():
    sent = FragmentsSent()
    first = sent.changed({"live-figures": "<table>1</table>", "live-leads": "<table>a</table>"})
    assert [json.loads(e.split("data: ", 1)[1]) for e in first] == [
        {"id": "live-figures", "html": "<table>1</table>"}, {"id": "live-leads", "html": "<table>a</table>"}]
    assert all(e.startswith("event: fragment\n") and e.endswith("\n\n") for e in first)
    assert sent.changed({"live-figures": "<table>1</table>", "live-leads": "<table>a</table>"}) == []
    again = sent.changed({"live-figures": "<table>2</table>", "live-leads": "<table>a</table>"})
    assert len(again) == 1 and '"live-figures"' in again[0] and "<table>2</table>" in again[0]
    # HTML with newlines stays on one data line (JSON), as an event's data must.
    assert "\n" not in sent.changed({"live-leads": "<tr>\n<td>b</td>\n</tr>"})[0].split("data: ", 1)[1][:-2]
