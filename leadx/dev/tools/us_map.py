"""Builds the portal's map of the United States (services/portal/maps/us-states.json) from the npm
package us-atlas, pinned by version and checksum: ``python -m leadx.dev.tools.us_map`` (needs npm).

The map ships with the project, so the portal downloads nothing when it runs. us-atlas (ISC licence,
Mike Bostock) is the U.S. Census Bureau's 2017 cartographic boundaries at 1:10,000,000 as TopoJSON,
already projected (Albers USA, Alaska and Hawaii moved beside the lower 48) onto a 975 × 610 box.
This tool decodes its arcs into one SVG path per state and DC, keyed by the postal code the leads
carry, and copies the package's licence beside the result (services/portal/maps/LICENSE-us-atlas).

TopoJSON in brief (https://github.com/topojson/topojson-specification): the shared borders are
stored once, as arcs of delta-encoded integer points; a ring lists the arcs it follows, index ~i
meaning arc i walked backwards; consecutive arcs share their end points; `transform` maps the
integers back to the projected plane."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
OUT_DIR = ROOT / "services" / "portal" / "maps"
PACKAGE = "us-atlas@3.0.1"
SHA256 = "e6daba1800885868303ad3549da62f85a557b8142bb72629ec15651de62f9c5d"
SOURCE = "package/states-albers-10m.json"
WIDTH, HEIGHT = 975, 610

# The states' FIPS codes (the TopoJSON's ids) and their postal codes.
POSTAL_CODES = {
    "01": "AL", "02": "AK", "04": "AZ", "05": "AR", "06": "CA", "08": "CO", "09": "CT", "10": "DE", "11": "DC",
    "12": "FL", "13": "GA", "15": "HI", "16": "ID", "17": "IL", "18": "IN", "19": "IA", "20": "KS", "21": "KY",
    "22": "LA", "23": "ME", "24": "MD", "25": "MA", "26": "MI", "27": "MN", "28": "MS", "29": "MO", "30": "MT",
    "31": "NE", "32": "NV", "33": "NH", "34": "NJ", "35": "NM", "36": "NY", "37": "NC", "38": "ND", "39": "OH",
    "40": "OK", "41": "OR", "42": "PA", "44": "RI", "45": "SC", "46": "SD", "47": "TN", "48": "TX", "49": "UT",
    "50": "VT", "51": "VA", "53": "WA", "54": "WV", "55": "WI", "56": "WY",
}

Point = tuple[float, float]


def decode_arcs(topology: dict) -> list[list[Point]]:
    """Every arc as points on the projected plane (undoing the delta encoding and the transform)."""
    (sx, sy), (tx, ty) = topology["transform"]["scale"], topology["transform"]["translate"]
    arcs = []
    for encoded in topology["arcs"]:
        x = y = 0
        points = []
        for dx, dy in encoded:
            x, y = x + dx, y + dy
            points.append((x * sx + tx, y * sy + ty))
        arcs.append(points)
    return arcs


def ring_points(arcs: Sequence[list[Point]], indices: Iterable[int]) -> list[Point]:
    """A ring's points: its arcs in order, ~i walked backwards, each arc's first point (the end of
    the arc before it) dropped after the first arc."""
    points: list[Point] = []
    for index in indices:
        arc = arcs[index] if index >= 0 else arcs[~index][::-1]
        points.extend(arc if not points else arc[1:])
    return points


def ring_path(points: Sequence[Point]) -> str:
    """One closed SVG subpath to a tenth of a unit (a tenth of a pixel at the map's own size): the
    first point absolute, then each step relative (a third of the bytes), repeated points dropped."""
    tenths = [(round(x * 10), round(y * 10)) for x, y in points]
    steps = [f"{_tenths(x)},{_tenths(y)}" for x, y in tenths[:1]]
    for (x0, y0), (x1, y1) in zip(tenths, tenths[1:], strict=False):
        if (x1, y1) != (x0, y0):
            steps.append(f"{_tenths(x1 - x0)},{_tenths(y1 - y0)}")
    return "M" + steps[0] + ("l" + " ".join(steps[1:]) if len(steps) > 1 else "") + "z"


def _tenths(value: int) -> str:
    return f"{value / 10:g}"


def geometry_path(arcs: Sequence[list[Point]], geometry: dict) -> str:
    """A Polygon's or MultiPolygon's rings as one SVG path (the even-odd rule is not needed: holes
    run the other way, and the nonzero rule leaves them empty)."""
    polygons = geometry["arcs"] if geometry["type"] == "MultiPolygon" else [geometry["arcs"]]
    return "".join(ring_path(ring_points(arcs, ring)) for polygon in polygons for ring in polygon)


def states_map(topology: dict) -> dict:
    """{"width", "height", "states": {postal code: {"name", "path"}}} from the us-atlas topology."""
    arcs = decode_arcs(topology)
    states = {}
    for geometry in topology["objects"]["states"]["geometries"]:
        code = POSTAL_CODES[geometry["id"]]
        states[code] = {"name": geometry["properties"]["name"], "path": geometry_path(arcs, geometry)}
    return {"source": f"npm {PACKAGE} ({SOURCE.removeprefix('package/')}), ISC licence: LICENSE-us-atlas",
            "width": WIDTH, "height": HEIGHT, "states": dict(sorted(states.items()))}


def _package(tarball: Path | None) -> bytes:
    if tarball is not None:
        return tarball.read_bytes()
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run(["npm", "pack", PACKAGE, "--silent"], cwd=scratch, check=True, stdout=subprocess.DEVNULL)
        (packed,) = Path(scratch).glob("*.tgz")
        return packed.read_bytes()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tarball", type=Path, help=f"{PACKAGE}'s tarball, already fetched (default: npm pack)")
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    args = parser.parse_args(argv)
    package = _package(args.tarball)
    digest = hashlib.sha256(package).hexdigest()
    if digest != SHA256:
        print(f"us_map: {PACKAGE} has sha256 {digest}, not the pinned {SHA256}", file=sys.stderr)
        return 1
    with tarfile.open(fileobj=io.BytesIO(package)) as archive:
        topology = json.load(archive.extractfile(SOURCE))  # type: ignore[arg-type]
        licence = archive.extractfile("package/LICENSE").read()  # type: ignore[union-attr]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "us-states.json").write_text(json.dumps(states_map(topology), indent=0) + "\n")
    (args.out / "LICENSE-us-atlas").write_bytes(licence)
    print(f"us_map: {len(topology['objects']['states']['geometries'])} states written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
