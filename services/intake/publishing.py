"""Publishing a lead within a bound, and shedding load when too many publishes are in flight.

What the seller is told depends on what the intake knows about the record, never on a guess:

- **Not handed over** (refused by the in-flight limit, or the producer raised before the record
  entered its buffer, or the bound passed while it was still waiting to enter it and the hand-over
  was cancelled): the record can never be written. Only then may the seller hear 503 "not queued,
  retry" (`NotQueued`).
- **Acknowledged** by the broker (acks=all) within the bound: the lead is the exchange's.
- **Unknown**: handed over but not acknowledged within the bound, or failed in a way after which the
  broker may still hold it (a timed-out or cut-off request may have been written; a broker's
  NOT_ENOUGH_REPLICAS_AFTER_APPEND was appended). The seller gets 202 and the status URL, and the
  publish goes on here in the background.

At-least-once, never at-most-once: a background publish whose outcome stays unknown is published
again, the same record under the same event id, until the broker acknowledges it. With
KAFKA_IDEMPOTENCE=true the producer itself retries a batch until it is written, de-duplicated by the
broker through its sequence numbers, so a copy arises only from our own re-publish after an error;
without it (tansu) the producer gives a batch up after its request timeout, and a batch it re-sent
meanwhile may be in the log twice. Either way a copy of lead.submitted carries the lead id and the
event id of the first, and every consumer downstream is idempotent on them (the ledger re-drives a
stalled lead the same way): a copy is never a second lead.

A background publish ends "lost" only when nothing it tried can have been written: every attempt
was refused by the broker for the batch itself (`BROKER_REFUSALS`: too large, corrupt, invalid topic,
not authorised: an earlier attempt of the same batch would have met the same refusal) or never
handed over. `on_lost` then says so where the status endpoint reads it. An outcome that is merely
still unknown never ends as "lost": that would tell a seller to resubmit a lead that may be sold.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiokafka import errors as kafka_errors
from google.protobuf.message import Message

from leadx.platform.ids import new_event_id
from leadx.platform.kafka.producer import EventProducer
from leadx.platform.logs import log_event
from services.intake.metrics import LEAD_PUBLISHES_PAST_BOUND, LEADS_IN_FLIGHT, LEADS_NOT_QUEUED_AFTER_202

log = logging.getLogger(__name__)

# Errors the broker answers for the batch as it is: the batch was not appended, and no retry of the
# same batch could have been.
BROKER_REFUSALS: tuple[type[Exception], ...] = (
    kafka_errors.MessageSizeTooLargeError, kafka_errors.RecordListTooLargeError, kafka_errors.CorruptRecordException,
    kafka_errors.InvalidTopicError, kafka_errors.TopicAuthorizationFailedError,
    kafka_errors.ClusterAuthorizationFailedError, kafka_errors.InvalidRequiredAcksError,
    kafka_errors.InvalidTimestampError, kafka_errors.PolicyViolationError, kafka_errors.UnsupportedVersionError,
)
RETRY_BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)  # between re-publishes of an unknown outcome; the last repeats


class NotQueued(Exception):
    """Certain: the record was not handed to the producer (or every attempt was refused), so it
    will never be written. `retry_after_s`: when the seller may retry."""

    def __init__(self, reason: str, retry_after_s: int = 1) -> None:
        super().__init__(reason)
        self.reason, self.retry_after_s = reason, retry_after_s


class Overloaded(NotQueued):
    """Refused before anything was done: too many publishes in flight."""


class OutcomeUnknown(Exception):
    """Given up on: an attempt may be in the log, and the last was refused for the batch itself,
    so publishing it again would be refused too. The lead stays pending; it is logged."""


def certainly_refused(exc: BaseException) -> bool:
    """The broker refused the batch: not written, not by this attempt nor by any retry of it."""
    return isinstance(exc, BROKER_REFUSALS)


@dataclass
class InFlight:
    """How many lead submissions are in flight (their requests, then their unacknowledged
    publishes), against a limit (0: no limit)."""

    limit: int
    count: int = 0

    def try_enter(self) -> bool:
        if self.limit and self.count >= self.limit:
            return False
        self.count += 1
        return True

    def leave(self) -> None:
        self.count = max(0, self.count - 1)


class Slot:
    """One submission's place in flight: released when its request ends, or, if its publish went
    on in the background (`kept`), when that publish ends."""

    def __init__(self, in_flight: InFlight) -> None:
        self._in_flight, self._held, self.kept = in_flight, True, False

    def release(self) -> None:
        if self._held:
            self._held = False
            self._in_flight.leave()


ACKED, UNKNOWN = "acked", "unknown"


class BoundedPublisher:
    """Publishes a record and answers within `timeout_s`: ACKED, UNKNOWN (still publishing in the
    background) or NotQueued; at most `max_in_flight` submissions at a time (0: no limit)."""

    def __init__(self, producer: EventProducer, timeout_s: float, max_in_flight: int) -> None:
        self.producer, self.timeout_s = producer, timeout_s
        self.in_flight = InFlight(max_in_flight)
        self._background: set[asyncio.Task] = set()
        LEADS_IN_FLIGHT.set_function(lambda: self.in_flight.count)

    @property
    def retry_after_s(self) -> int:
        """What a refused seller is told to wait: about one bound, at least a second."""
        return max(1, round(self.timeout_s))

    def admit(self) -> Slot:
        """A place in flight for a submission, or Overloaded at once (nothing else is done first)."""
        if not self.in_flight.try_enter():
            raise Overloaded("too many leads are in flight", self.retry_after_s)
        return Slot(self.in_flight)

    async def publish(self, slot: Slot, topic: str, key: str, message: Message,
                      on_lost: Callable[[], Awaitable[None]]) -> str:
        """ACKED or UNKNOWN, or raises NotQueued. On UNKNOWN the publish keeps `slot` until it ends,
        and `on_lost` runs if it ends certainly unwritten."""
        delivery = _Delivery(self.producer, topic, key, message)
        task = asyncio.create_task(delivery.run(), name=f"publish {key}")
        done, _ = await asyncio.wait({task}, timeout=self.timeout_s)
        if not done and not delivery.handed_over:
            # Still waiting to enter the producer's buffer (the broker's metadata, or a full
            # buffer): cancelled there, it never enters, so the answer is certain.
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            if not delivery.handed_over:
                raise NotQueued("the broker did not take the lead in time", self.retry_after_s)
            done = {task}
        if task in done:
            error = task.exception()
            if error is None:
                return ACKED
            if isinstance(error, NotQueued):
                raise NotQueued(error.reason, self.retry_after_s)
            if isinstance(error, OutcomeUnknown):
                log_event(log, "lead publish given up, outcome unknown", lead_id=key, reason=str(error))
                return UNKNOWN
            raise error
        slot.kept = True
        LEAD_PUBLISHES_PAST_BOUND.inc()
        follower = asyncio.create_task(_follow(task, slot, key, on_lost), name=f"follow {key}")
        self._background.add(follower)
        follower.add_done_callback(self._background.discard)
        return UNKNOWN

    async def drain(self, timeout_s: float) -> int:
        """Wait up to `timeout_s` for the background publishes (at shutdown); how many are left."""
        if self._background:
            await asyncio.wait(set(self._background), timeout=timeout_s)
        return len(self._background)


class _Delivery:
    """One record's publishes until acknowledged (returns) or certainly not written (NotQueued)."""

    def __init__(self, producer: EventProducer, topic: str, key: str, message: Message) -> None:
        self.producer, self.topic, self.key, self.message = producer, topic, key, message
        self.event_id = new_event_id()  # every copy under one event id: consumers drop the repeats
        self.handed_over = False  # some attempt reached the producer's buffer: it may be written

    async def run(self) -> None:
        attempt = 0
        while True:
            try:
                acknowledged = await self.producer.hand_over(self.topic, self.key, self.message, self.event_id)
            except Exception as exc:
                if not self.handed_over:
                    raise NotQueued(f"the producer did not take the lead: {type(exc).__name__}") from exc
                error: BaseException = exc  # an earlier attempt may be written: keep trying
            else:
                self.handed_over = True
                try:
                    await acknowledged
                    return
                except Exception as exc:
                    error = exc
                    if certainly_refused(exc):
                        refusal = type(exc).__name__
                        if attempt == 0:
                            raise NotQueued(f"the broker refused the lead: {refusal}") from exc
                        raise OutcomeUnknown(f"refused after an attempt of unknown outcome: {refusal}") from exc
            # Unknown: it may be in the log. Publish it again (the same event id) until it is
            # acknowledged; a copy is harmless downstream, a loss is not.
            log_event(log, "lead publish outcome unknown; publishing it again", lead_id=self.key,
                      attempt=attempt + 1, error=type(error).__name__)
            await asyncio.sleep(RETRY_BACKOFF_S[min(attempt, len(RETRY_BACKOFF_S) - 1)])
            attempt += 1


async def _follow(task: asyncio.Task, slot: Slot, key: str, on_lost: Callable[[], Awaitable[None]]) -> None:
    """A publish answered UNKNOWN: record it as lost if it ends certainly unwritten."""
    try:
        await task
    except NotQueued as exc:
        log_event(log, "lead not queued after its 202", lead_id=key, reason=exc.reason)
        LEADS_NOT_QUEUED_AFTER_202.inc()
        try:
            await on_lost()
        except Exception:
            log.exception("could not record lead %s as not queued", key)
    except OutcomeUnknown as exc:
        log_event(log, "lead publish given up, outcome unknown", lead_id=key, reason=str(exc))
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("publishing lead %s failed", key)
    finally:
        slot.release()
