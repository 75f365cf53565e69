"""Loading the POST rule files at start: every problem is logged with its file, line and rule;
a broken section keeps only that buyer out (docs/post-rules.md)."""

from __future__ import annotations

import logging
from pathlib import Path

from leadx.delivery.post_adaptation import known_fields
from leadx.delivery.post_adaptation.syntax import RuleBook, load_rule_files
from leadx.platform.config import ConfigError
from leadx.platform.logs import log_event

log = logging.getLogger(__name__)


def load_post_rules(directory: str) -> RuleBook:
    if not directory:
        return RuleBook()
    path = Path(directory)
    if not path.is_dir():
        raise ConfigError(f"DELIVERY_RULES_DIR {directory!r} is not a directory")
    book = load_rule_files(path, known_fields())
    for problem in book.problems:
        log.error("POST rule problem", extra={"fields": {"problem": str(problem)}})
    log_event(log, "POST rules loaded", buyers=len(book.sections), broken=sorted(book.broken))
    return book
