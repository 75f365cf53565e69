"""The requests an Apache Kafka broker completed, counted by client and kind.

A broker started with its request log (leadx.dev.kafka_broker.KafkaBroker's `request_log`, the
local stack's `kafka_request_log`) writes a line for every request it completes: Kafka's request
logger at DEBUG, `... Completed request:{json}` with the request's header (its API and the client's
`client.id`), its topics and partitions, and the broker's timings. Every leadx client names itself
(docs/operations.md, "Kafka clients, by id"), so the counts say which stage asks what of the broker:
the yardstick of bench/sustained.py's `--count-requests`.

`RequestLog` reads a broker's output from a mark on; `count` reads lines. Neither keeps a line.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

MARKER = "Completed request:"


@dataclass
class Requests:
    """One client's requests of one kind (PRODUCE, FETCH, OFFSET_COMMIT...)."""

    api: str
    client_id: str
    count: int = 0
    local_ms: float = 0.0  # the broker's time in its request handlers (localTimeMs), summed
    # FETCH: partitions whose response carried records, summed; responses that carried none.
    partitions_with_records: int = 0
    empty: int = 0
    # PRODUCE: partition batches sent, by topic.
    batches_by_topic: dict[str, int] = field(default_factory=dict)


@dataclass
class RequestCounts:
    by_kind: dict[tuple[str, str], Requests] = field(default_factory=dict)  # (api, client id) ->
    unreadable: int = 0  # request lines whose JSON could not be read, or lacked a request's header

    @property
    def total(self) -> int:
        return sum(requests.count for requests in self.by_kind.values())

    def add(self, entry: dict) -> None:
        """Count one request line's document; raises (and counts nothing) if it is not one."""
        header = entry["requestHeader"]
        key = (header["requestApiKeyName"], header.get("clientId") or "")
        local_ms = float(entry.get("localTimeMs") or 0.0)
        with_records = sum(1 for topic in (entry.get("response") or {}).get("responses") or ()
                           for partition in topic.get("partitions") or ()
                           if (partition.get("recordsSizeInBytes") or 0) > 0) if key[0] == "FETCH" else 0
        batches = [(topic.get("name") or "", len(topic.get("partitionData") or ()))
                   for topic in (entry.get("request") or {}).get("topicData") or ()] if key[0] == "PRODUCE" else []
        requests = self.by_kind.get(key)
        if requests is None:
            requests = self.by_kind[key] = Requests(*key)
        requests.count += 1
        requests.local_ms += local_ms
        if key[0] == "FETCH":
            requests.partitions_with_records += with_records
            requests.empty += with_records == 0
        for name, partitions in batches:
            requests.batches_by_topic[name] = requests.batches_by_topic.get(name, 0) + partitions

    def summary(self, seconds: float, sold_leads: int, topic_prefix: str = "") -> dict:
        """The counts as figures: in all and per kind and client, requests a second and a sold lead
        (None without sales: counted at rest), the broker's mean handling time, and what fetches
        brought and produces carried; most first."""
        def per_lead(count: float) -> float | None:
            return round(count / sold_leads, 3) if sold_leads else None

        rows = []
        for requests in sorted(self.by_kind.values(), key=lambda r: (-r.count, r.api, r.client_id)):
            row: dict = {"api": requests.api, "client_id": requests.client_id, "requests": requests.count,
                         "per_s": round(requests.count / seconds, 1), "a_sold_lead": per_lead(requests.count),
                         "local_ms_mean": round(requests.local_ms / requests.count, 3)}
            if requests.api == "FETCH":
                row["partitions_with_records_a_fetch"] = round(requests.partitions_with_records / requests.count, 2)
                row["empty_share"] = round(requests.empty / requests.count, 3)
            if requests.api == "PRODUCE":
                row["partition_batches_by_topic"] = {name.removeprefix(topic_prefix): batches for name, batches
                                                     in sorted(requests.batches_by_topic.items())}
            rows.append(row)
        by_api: dict[str, int] = {}
        for requests in self.by_kind.values():
            by_api[requests.api] = by_api.get(requests.api, 0) + requests.count
        most_first = sorted(by_api.items(), key=lambda api_count: -api_count[1])
        return {"seconds": round(seconds, 1), "requests": self.total, "per_s": round(self.total / seconds, 1),
                "a_sold_lead": per_lead(self.total),
                "per_s_by_api": {api: round(requests / seconds, 1) for api, requests in most_first},
                "a_sold_lead_by_api": {api: per_lead(requests) for api, requests in most_first},
                "unreadable_lines": self.unreadable, "by_api_and_client": rows}


def count(lines: Iterable[str]) -> RequestCounts:
    """The completed requests among a broker's output lines (others are passed over)."""
    counts = RequestCounts()
    for line in lines:
        at = line.find(MARKER)
        if at < 0:
            continue
        try:
            entry = json.loads(line[at + len(MARKER):])
            counts.add(entry)
        except (ValueError, KeyError, TypeError, AttributeError):
            counts.unreadable += 1
    return counts


class RequestLog:
    """A broker's output file, read from a mark: `mark()` where counting starts, `read()` the requests
    completed since (up to the last whole line written)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0

    def mark(self) -> None:
        self._offset = self.path.stat().st_size if self.path.exists() else 0

    def read(self) -> RequestCounts:
        with self.path.open("rb") as output:
            output.seek(self._offset)
            data = output.read()
        whole = data[: data.rfind(b"\n") + 1]  # a line still being written is left out
        return count(whole.decode("utf-8", "replace").splitlines())
