"""Load generation shared by the benchmarks: closed and open loops over aiohttp, the bare Starlette
baseline, percentiles, and the CPU each process used. Requests spread round-robin over several
URLs (several intake workers)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import NamedTuple
from pathlib import Path

import aiohttp
import psutil
from aiokafka import AIOKafkaConsumer

from leadx.dev.stack import free_port, wait_for_port


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


BARE_APP = '''
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

async def post(request):
    body = await request.json()
    return JSONResponse({"status": "accepted", "lead_id": "ABCDEFGHIJ", "errors": [], "n": len(body)})

app = Starlette(routes=[Route("/v1/post", post, methods=["POST"])])
'''


def start_bare_starlette() -> tuple[subprocess.Popen, int, Path]:
    folder = Path(tempfile.mkdtemp())
    (folder / "bare_app.py").write_text(BARE_APP)
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "uvicorn", "bare_app:app", "--port", str(port),
                                "--log-level", "warning", "--no-access-log"], cwd=folder)
    wait_for_port("127.0.0.1", port, 20, process)
    return process, port, folder


# ---------------------------------------------------------------- load generation

@contextlib.asynccontextmanager
async def frozen_heap():
    """The generator's own heap (the ZIP database behind the simulated consumers) makes a full garbage
    collection take ~150 ms; one during a run would send requests late, and an open loop would count
    that as the server's latency (it did: PING p99 at 1,000/s read 390 ms instead of 5 ms). Objects
    frozen before the run are not walked by the collector."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _session(headers: dict, connections: int) -> aiohttp.ClientSession:
    # aiohttp rather than httpx: httpx's async pool fell to ~260 req/s at 32 connections here,
    # which would have measured the load generator instead of the server.
    return aiohttp.ClientSession(headers=headers, connector=aiohttp.TCPConnector(limit=connections),
                                 timeout=aiohttp.ClientTimeout(total=30))


async def closed_loop(url: str | list[str], headers: dict, bodies: list[dict], concurrency: int) -> dict:
    """Post every body with `concurrency` requests in flight; returns rate and answers."""
    urls = [url] if isinstance(url, str) else url
    queue = list(reversed(bodies))
    answers: list[tuple[int, dict, float]] = []
    async with _session(headers, concurrency) as client, frozen_heap():
        async def worker(target: str) -> None:
            while queue:
                body = queue.pop()
                started = time.perf_counter()
                async with client.post(target, json=body) as response:
                    answer = await response.json()
                answers.append((response.status, answer, time.perf_counter() - started))

        start = time.perf_counter()
        await asyncio.gather(*(worker(urls[i % len(urls)]) for i in range(concurrency)))
        elapsed = time.perf_counter() - start
    return {"elapsed_s": elapsed, "rate": len(bodies) / elapsed, "answers": answers}


class Answer(NamedTuple):
    status: int  # 0: the request failed (no HTTP answer)
    body: dict
    seconds: float  # from the request's due time to its answer
    due_ms: float  # when the request was due, in ms since the epoch (to compare with record times)


async def open_loop(url: str | list[str], headers: dict, bodies: list[dict], rate: float,
                    connections: int = 500) -> list[Answer]:
    """Offer requests at a fixed rate whatever the answers' latency (no coordinated omission).
    Returns an Answer per request, in the order they were answered."""
    urls = [url] if isinstance(url, str) else url
    results: list[Answer] = []
    async with _session(headers, connections) as client, frozen_heap():
        async def one(target: str, body: dict, due: float, due_ms: float) -> None:
            try:
                async with client.post(target, json=body) as response:
                    answer = await response.json(content_type=None)
                    status = response.status
            except (aiohttp.ClientError, TimeoutError, ValueError):
                answer, status = {}, 0
            results.append(Answer(status, answer if isinstance(answer, dict) else {}, time.perf_counter() - due,
                                  due_ms))

        start, start_ms = time.perf_counter(), time.time() * 1000
        tasks = []
        for i, body in enumerate(bodies):
            due = start + i / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            tasks.append(asyncio.create_task(one(urls[i % len(urls)], body, due, start_ms + i * 1000 / rate)))
        await asyncio.gather(*tasks)
    return results


def rate_list(text: str) -> list[float]:
    """argparse type for comma-separated rates: "25,50,100"."""
    return [float(rate) for rate in text.split(",")]


def write_results(results: dict, args, path: Path, root: Path) -> Path:
    """Add the machine, commit and parameters to `results` and write them as JSON to `path`, or to
    a file of its name in BENCH_RESULTS_DIR when that is set (a short run's figures, kept apart
    from the full run's in bench/results): the path written."""
    if os.environ.get("BENCH_RESULTS_DIR"):
        path = Path(os.environ["BENCH_RESULTS_DIR"]) / path.name
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=root)
    results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "platform": platform.platform(), "commit": commit.stdout.strip(),
                          "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    results["parameters"] = vars(args)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {path.relative_to(root) if path.is_relative_to(root) else path}")
    return path


async def raw_consume(bootstrap: str, source: str, expected: int, decode: Callable | None = None) -> float:
    """A plain consumer (no group, no work per record but the optional decode) reading `source` from
    the start; returns records per second."""
    consumer = AIOKafkaConsumer(source, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
                                fetch_max_wait_ms=10)
    await consumer.start()
    try:
        count, started = 0, time.perf_counter()
        deadline = started + 300
        while count < expected and time.perf_counter() < deadline:
            for records in (await consumer.getmany(timeout_ms=500, max_records=10_000)).values():
                for record in records:
                    if decode is not None:
                        decode(record.value)
                    count += 1
        if count < expected:
            raise RuntimeError(f"read only {count} of {expected} records from {source}")
        return count / (time.perf_counter() - started)
    finally:
        await consumer.stop()


class CpuMeter:
    """CPU seconds each process used between start and stop, and as a share of one core."""

    def __init__(self, procs: dict[str, psutil.Process]) -> None:
        self.procs = procs
        self.started = time.perf_counter()
        self.cpu = {name: sum(p.cpu_times()[:2]) for name, p in procs.items()}
        self.machine = self._busy()

    @staticmethod
    def _busy() -> float:
        times = psutil.cpu_times()
        return sum(times) - times.idle - getattr(times, "iowait", 0.0)

    def stop(self) -> dict:
        elapsed = time.perf_counter() - self.started
        out, ours = {}, 0.0
        for name, process in self.procs.items():
            used = sum(process.cpu_times()[:2]) - self.cpu[name]  # user + system, every thread
            ours += used
            out[f"{name}_cpu_s"] = round(used, 2)
            out[f"{name}_core_share"] = round(used / elapsed, 2)
        # Every core of the machine, busy: what is left after the processes above is other work
        # on the machine (the benchmark shares it), or the kernel's.
        busy = self._busy() - self.machine
        out["machine_busy_cores"] = round(busy / elapsed, 2)
        out["other_work_cores"] = round(max(0.0, busy - ours) / elapsed, 2)
        return out
