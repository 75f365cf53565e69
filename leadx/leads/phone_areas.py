"""US telephone area codes and the state each one serves (us_area_codes.toml, derived from
libphonenumber's metadata by `python -m leadx.dev.tools.area_codes`).

A home phone must carry a real, geographic area code (not 555, not toll-free 8XX); whether that area
code belongs to the lead's state is a plausibility check (people keep their numbers when they move),
so verification reports a mismatch as a warning unless configured to reject it.
"""

from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path

TABLE_FILE = Path(__file__).with_name("us_area_codes.toml")


@lru_cache(maxsize=1)
def area_code_states() -> dict[str, str]:
    """Every geographic US area code → its state's two-letter code (~360 entries, read once)."""
    return {npa: state for npa, state in tomllib.loads(TABLE_FILE.read_text()).items()}


@lru_cache(maxsize=64)
def area_codes_of(state: str) -> tuple[str, ...]:
    return tuple(sorted(npa for npa, s in area_code_states().items() if s == state))


def state_of_area_code(npa: str) -> str | None:
    return area_code_states().get(npa)
