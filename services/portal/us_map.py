"""The map of the United States the Markets page colours: one SVG path per state and DC on a
975 × 610 box, built from the pinned npm package us-atlas by leadx/dev/tools/us_map.py and shipped
in services/portal/maps/ (nothing is downloaded at run time)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

MAP_FILE = Path(__file__).with_name("maps") / "us-states.json"
# The territories the ZIP database covers: not on the map, in its table and with pages of their own.
TERRITORIES = {"PR": "Puerto Rico", "VI": "U.S. Virgin Islands", "GU": "Guam", "AS": "American Samoa",
               "MP": "Northern Mariana Islands"}


@dataclass(frozen=True)
class StateShape:
    code: str  # the postal code, as the leads carry it
    name: str
    path: str  # SVG path data on the map's box


@dataclass(frozen=True)
class USMap:
    width: int
    height: int
    states: tuple[StateShape, ...]  # by postal code

    def name_of(self, code: str) -> str:
        return next((shape.name for shape in self.states if shape.code == code), TERRITORIES.get(code, code))


@lru_cache(maxsize=1)
def us_map(path: Path = MAP_FILE) -> USMap:
    data = json.loads(path.read_text())
    return USMap(data["width"], data["height"],
                 tuple(StateShape(code, shape["name"], shape["path"]) for code, shape in data["states"].items()))
