"""Scores leads in batches: the leads asked for in one turn of the event loop (the consumer hands
over a fetched batch side by side) go to the models in one call. A model call has a fixed cost
of about a millisecond (input checks, numpy and spline set-up) that one lead at a time would pay
each time; in a batch it is paid once (bench/scoring.py measures the batch sizes under load).

The bundle can be swapped while running (`replace`): a batch is scored with the bundle it
started with."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from leadx.scoring.models import ModelBundle, Score


class BatchScorer:
    def __init__(self, bundle: ModelBundle) -> None:
        self.bundle = bundle
        self._waiting: list[tuple[Mapping[str, object], int, int, asyncio.Future]] = []

    def replace(self, bundle: ModelBundle) -> None:
        self.bundle = bundle

    async def score(self, fields: Mapping[str, object], created_ms: int, scored_ms: int) -> tuple[Score, str]:
        """The lead's score and the version of the bundle that gave it."""
        loop = asyncio.get_running_loop()
        scored = loop.create_future()
        self._waiting.append((fields, created_ms, scored_ms, scored))
        if len(self._waiting) == 1:
            # After the tasks already scheduled, i.e. the rest of the fetched batch, have asked too.
            loop.call_soon(self._score_waiting)
        return await scored

    def _score_waiting(self) -> None:
        waiting, self._waiting = self._waiting, []
        bundle = self.bundle
        try:
            scores = bundle.score([w[0] for w in waiting], [w[1] for w in waiting], [w[2] for w in waiting],
                                  direct=False)
        except Exception as error:  # noqa: BLE001 - every waiting lead hears of it, and is retried
            for *_, scored in waiting:
                if not scored.done():
                    scored.set_exception(error)
            return
        for (*_, scored), score in zip(waiting, scores, strict=True):
            if not scored.done():  # its handler was cancelled
                scored.set_result((score, bundle.version))
