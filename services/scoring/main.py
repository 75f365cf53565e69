"""scoring: lead.verified → lead.scored, with the current model bundle (leadx.scoring).

`SCORING_MODELS` names the model registry that `leadx scoring train` writes to; the service loads
its current bundle, or the prior shipped with leadx while there is none, and looks again every
`SCORING_RELOAD_SECONDS` so that a new bundle is served without a restart."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from threadpoolctl import threadpool_limits

from leadx.contracts import topics
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.leads.sealing import PiiKeyring
from leadx.platform.config import CommonSettings, env_float, env_str
from leadx.platform.ids import derived_event_id
from leadx.platform.kafka.envelope import Envelope
from leadx.platform.runtime import ServiceRuntime, run
from leadx.scoring.registry import BundleRefused, current
from services.scoring.metrics import LEADS_SCORED
from services.scoring.scorer import BatchScorer

log = logging.getLogger("leadx.scoring")


async def follow_registry(scorer: BatchScorer, registry: Path | None, every_s: float, stop: asyncio.Event) -> None:
    """Serves the registry's current bundle once `leadx scoring train` names a new one. A refused
    bundle (leadx.scoring.registry.BundleRefused) is looked at again each time, as it may have been
    half-copied, but said only once while it stays refused for the same reason; the one in hand
    is kept."""
    refused: str | None = None
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), every_s)
        except TimeoutError:
            pass
        if stop.is_set() or registry is None:
            continue
        named = None
        try:
            named = (registry / "current").read_text().strip() if (registry / "current").exists() else None
            if named and named != scorer.bundle.version:
                scorer.replace(await asyncio.to_thread(current, registry))
                refused = None
                log.info("serving model bundle", extra={"fields": {"version": scorer.bundle.version}})
        except BundleRefused as exc:
            if str(exc) != refused:
                refused = str(exc)
                log.error("model bundle refused; serving the one in hand", extra={"fields": {
                    "refused": named, "serving": scorer.bundle.version, "reason": refused}})
        except Exception:  # a half-written or unreadable bundle: keep serving the one we have
            log.warning("could not load the registry's current bundle", exc_info=True)


async def main(stop: asyncio.Event) -> None:
    # One thread for numpy's and scikit-learn's native pools: their spare threads spin between the
    # small calls a lead stream makes, doubling the CPU per lead for no speed, and a worker whose
    # neighbour is busy waits on them (bench/scoring.py: 130 leads/s instead of 3,000).
    threadpool_limits(limits=1)
    runtime = ServiceRuntime(CommonSettings.from_env("scoring", redis=False, database=False))
    keyring = PiiKeyring.from_env()  # the models read the consumer's age and work phone, which are sealed
    folder = env_str("SCORING_MODELS", "").strip()
    registry = Path(folder) if folder else None
    try:
        scorer = BatchScorer(current(registry))
    except BundleRefused as exc:  # nothing to serve: stop, saying why
        raise SystemExit(f"scoring: {exc}") from None
    log.info("serving model bundle", extra={"fields": {"version": scorer.bundle.version}})

    async def handle(envelope: Envelope) -> None:
        verified = envelope.message
        lead = verified.lead
        result, version = await scorer.score(keyring.fields_of(lead), lead.submitted_at_ms, int(time.time() * 1000))
        scored = ev.LeadScored(verified=verified, probability=result.probability, cluster=result.cluster,
                               model_version=version, timing_factor=result.timing_factor)
        await runtime.producer.publish(topics.LEAD_SCORED, lead.lead_id, scored,
                                       derived_event_id(lead.lead_id, "scored"))
        LEADS_SCORED.inc()

    runtime.consume("scoring", {topics.LEAD_VERIFIED: ev.LeadVerified}, handle)
    reloading = asyncio.create_task(follow_registry(scorer, registry, env_float("SCORING_RELOAD_SECONDS", 30.0), stop))
    try:
        await runtime.run(stop)
    finally:
        reloading.cancel()


if __name__ == "__main__":
    run(main)
