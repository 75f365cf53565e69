"""services/auction/main.py: faust's worker logs at the service's LOG_LEVEL, no lower."""

from __future__ import annotations

import io
import logging

import faust
import pytest

from services.auction.main import faust_worker


@pytest.fixture
def root_logger():
    """The root logger as it was: the worker's set-up replaces its handlers and level."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize("level", ["WARNING", "ERROR", "INFO", "DEBUG"])
def test_the_root_logger_keeps_the_services_level(root_logger, level: str) -> None:
    # faust's terminal spinner, at WARNING or above, set the root logger to DEBUG: every leadx
    # logger under it made a record of each debug and info call.
    app = faust.App("auction-logging-test", broker="kafka://127.0.0.1:1")
    worker = faust_worker(app, level)
    worker.stdout, worker.stderr = io.StringIO(), io.StringIO()
    worker.redirect_stdouts = False  # the test's own stdout stays pytest's
    worker._setup_logging()
    assert root_logger.level == logging.getLevelName(level)
    below = logging.getLevelName(level) - 10
    assert not logging.getLogger("services.auction.closing").isEnabledFor(below)
    assert logging.getLogger("services.auction.closing").isEnabledFor(logging.getLevelName(level))
    assert not any(type(handler).__name__ == "SpinnerHandler" for handler in root_logger.handlers)
