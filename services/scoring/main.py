"""scoring: lead.verified → lead.scored."""

from __future__ import annotations

import asyncio

from leadx import service, topics
from leadx.config import CommonSettings
from leadx.events.v1 import events_pb2 as ev
from leadx.ids import derived_event_id
from leadx.kafka import Envelope
from leadx.runtime import ServiceRuntime
from services.scoring.model import MODEL_VERSION, score


async def main(stop: asyncio.Event) -> None:
    runtime = ServiceRuntime(CommonSettings.from_env("scoring"))

    async def handle(envelope: Envelope) -> None:
        verified = envelope.message
        result = score(dict(verified.lead.fields))
        scored = ev.LeadScored(verified=verified, probability=result.probability,
                               cluster=result.cluster, model_version=MODEL_VERSION)
        await runtime.producer.publish(topics.LEAD_SCORED, verified.lead.lead_id, scored,
                                       derived_event_id(verified.lead.lead_id, "scored"))

    runtime.consume("scoring", {topics.LEAD_VERIFIED: ev.LeadVerified}, handle)
    await runtime.run(stop)


if __name__ == "__main__":
    service.run(main)
