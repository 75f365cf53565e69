"""Each stage of a lead's path alone, in short runs of the stage benches, as leads per second: what
the whole is compared with (bench/sustained.py --stages runs them after the whole, in the same run).

Each stage bench runs as a subprocess with small sizes (a minute or two each) and writes its
figures to a scratch folder (BENCH_RESULTS_DIR), not over its own full run's in bench/results.
From its figures, the stage's rate in the unit of the whole, a lead:
  * intake: POSTs answered per second by one worker with 256 in flight (its CPU-bound figure);
  * dedup: leads checked per second by one worker;
  * scoring: leads scored per second by the service off the broker (its flood);
  * auction: auctions opened per second (each lead opens one);
  * delivery: a sold lead costs three pings and one adapted post, four calls through its buyer
    client, so a quarter of its adapted posts per second (64 in flight to a fast local server: the
    client's CPU-bound rate). Its ping fan-out figure is not used: one buyer in ten answers after a
    second and each auction waits for all its hundred, so that rate is set by the waiting;
  * ledger: sold leads recorded per second (its six events each) in batches of 300, on the same
    database as the whole.
Each stage bench measures its stage with the broker, Redis or SQL it needs, on the same two cores,
and the load generator beside it: a stage's rate here is what that stage sells at most on this
machine when nothing else runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PINGS_PER_LEAD = 3  # the sustained bench's buyers
STAGE_TIMEOUT_S = 600.0  # a stage bench that hangs is reported failed, not waited for


@dataclass(frozen=True)
class Stage:
    name: str
    argv: list[str]  # the bench and its short-run sizes
    results: str  # the file it writes
    leads_per_s: Callable[[dict, str], float]  # (its figures, the database) -> leads per second
    unit: str


def _delivery(figures: dict, _database: str) -> float:
    return figures["adapted_posts"]["posts_per_s"] / (PINGS_PER_LEAD + 1)


STAGES = [
    Stage("intake", ["intake.py", "--requests", "1000", "--busy-requests", "4000", "--ping-rates", "500",
                     "--seconds", "3"], "intake.json",
          lambda f, _: f["one_worker"]["post_busy"]["requests_per_s"], "POSTs answered /s, one worker"),
    Stage("dedup", ["dedup.py", "--identities", "300000", "--checks", "30000", "--baseline-requests", "50000"],
          "dedup.json", lambda f, _: f["one_worker"]["checks_per_s"], "leads checked /s, one worker"),
    Stage("scoring", ["scoring.py", "--leads", "10000", "--train-leads", "10000", "--eval-leads", "5000",
                      "--more-seeds", "0", "--rates", "500", "--seconds", "3", "--contended-rate", "0",
                      "--in-process-leads", "2000", "--in-process-calls", "100"], "scoring.json",
          lambda f, _: f["service"]["flood"]["scored_per_s"], "leads scored /s, the service"),
    Stage("auction", ["auction.py", "--leads", "5000", "--bids", "10000", "--phases", "hold"], "auction.json",
          lambda f, _: f["hold_open"]["open_per_s"], "auctions opened /s, the service"),
    Stage("delivery", ["delivery.py", "--posts", "2000", "--auctions", "60"], "delivery.json",
          _delivery, f"leads pinged to {PINGS_PER_LEAD} and posted /s (posts /s / {PINGS_PER_LEAD + 1})"),
    Stage("ledger", ["ledger.py", "--leads", "1500", "--baseline-leads", "60", "--batches", "300",
                     "--rounds", "1"], "ledger.json",
          lambda f, database: f[database]["batches of 300"]["sold_leads_per_s"], "sold leads recorded /s"),
]


def run_stages(databases: list[str], names: list[str] | None = None) -> dict[str, dict]:
    """Run the stage benches (all, or those named) one after another: per stage its leads per
    second on each database (the same on each but for the ledger), the unit, and how long its run
    took."""
    figures: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="leadx-stages-") as scratch:
        env = {**os.environ, "BENCH_RESULTS_DIR": scratch}
        for stage in STAGES:
            if names and stage.name not in names:
                continue
            print(f"stage alone: {stage.name} ...", flush=True)
            began = time.monotonic()
            argv = [sys.executable, str(ROOT / "bench" / stage.argv[0]), *stage.argv[1:]]
            try:
                done = subprocess.run(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                      text=True, timeout=STAGE_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                done = subprocess.CompletedProcess(argv, -1, "", f"no result in {STAGE_TIMEOUT_S:.0f} s")
            if done.returncode != 0:  # said, and left out of the comparison: the whole's figures stand
                figures[stage.name] = {"error": done.stderr.strip().splitlines()[-1:] or [f"exit {done.returncode}"]}
                print(f"  failed: {figures[stage.name]['error'][0]}", flush=True)
                continue
            result = json.loads((Path(scratch) / stage.results).read_text())
            rates = {database: round(stage.leads_per_s(result, database), 1) for database in databases}
            figures[stage.name] = {"leads_per_s": rates, "unit": stage.unit,
                                   "seconds": round(time.monotonic() - began, 1)}
            print(f"  {', '.join(f'{rate} on {database}' for database, rate in rates.items())}: {stage.unit}",
                  flush=True)
    return figures


def slowest(stages: dict[str, dict], database: str) -> tuple[str, float]:
    """The stage with the lowest rate on the database, and its rate (of the stages that ran)."""
    measured = {name: stage["leads_per_s"][database] for name, stage in stages.items() if "leads_per_s" in stage}
    name = min(measured, key=measured.__getitem__)
    return name, measured[name]
