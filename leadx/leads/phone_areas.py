"""US telephone area codes and the state each one serves, from libphonenumber's metadata.

A home phone must carry a real, geographic area code (not 555, not toll-free 8XX); whether that area
code belongs to the lead's state is a plausibility check (people keep their numbers when they move),
so verification reports a mismatch as a warning unless configured to reject it.
"""

from __future__ import annotations

from functools import lru_cache

import phonenumbers
from phonenumbers import geocoder

STATE_NAMES = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA", "Colorado": "CO",
    "Connecticut": "CT", "Delaware": "DE", "Washington D.C.": "DC", "Florida": "FL", "Georgia": "GA",
    "Hawaii": "HI", "Idaho": "ID", "Illinois": "IL", "Indiana": "IN", "Iowa": "IA", "Kansas": "KS",
    "Kentucky": "KY", "Louisiana": "LA", "Maine": "ME", "Maryland": "MD", "Massachusetts": "MA",
    "Michigan": "MI", "Minnesota": "MN", "Mississippi": "MS", "Missouri": "MO", "Montana": "MT",
    "Nebraska": "NE", "Nevada": "NV", "New Hampshire": "NH", "New Jersey": "NJ", "New Mexico": "NM",
    "New York": "NY", "North Carolina": "NC", "North Dakota": "ND", "Ohio": "OH", "Oklahoma": "OK",
    "Oregon": "OR", "Pennsylvania": "PA", "Rhode Island": "RI", "South Carolina": "SC", "South Dakota": "SD",
    "Tennessee": "TN", "Texas": "TX", "Utah": "UT", "Vermont": "VT", "Virginia": "VA", "Washington": "WA",
    "Washington State": "WA",
    "West Virginia": "WV", "Wisconsin": "WI", "Wyoming": "WY", "Puerto Rico": "PR",
    "Guam": "GU", "American Samoa": "AS", "Northern Mariana Islands": "MP", "U.S. Virgin Islands": "VI",
}
_CODES = frozenset(STATE_NAMES.values())


def _state_of(description: str) -> str | None:
    """libphonenumber describes a US number as 'City, ST' or as the state's name."""
    _, _, tail = description.rpartition(", ")
    if tail in _CODES:
        return tail
    return STATE_NAMES.get(description)


@lru_cache(maxsize=1)
def area_code_states() -> dict[str, str]:
    """Every geographic US area code → its state's two-letter code (built once, ~300 entries)."""
    table: dict[str, str] = {}
    for npa in range(200, 1000):
        # A line number from the middle of the range: valid wherever the area code is in service.
        number = phonenumbers.parse(f"+1{npa}2345678")
        if phonenumbers.region_code_for_number(number) not in {"US", "PR", "GU", "AS", "MP", "VI"}:
            continue
        if not phonenumbers.is_valid_number(number):
            continue
        state = _state_of(geocoder.description_for_number(number, "en"))
        if state:
            table[str(npa)] = state
    return table


@lru_cache(maxsize=64)
def area_codes_of(state: str) -> tuple[str, ...]:
    return tuple(sorted(npa for npa, s in area_code_states().items() if s == state))


def state_of_area_code(npa: str) -> str | None:
    return area_code_states().get(npa)
