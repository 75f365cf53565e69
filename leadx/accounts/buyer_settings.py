"""A buyer's auction settings (kind, weight, time zone, caps) and its AutoBid profiles, validated
here before they are stored, so the auction only ever loads documents that parse.

The import document (`leadx profiles import FILE.yaml`, docs/auction.md):
    buyers:
      - id: b_0123456789
        kind: autobid              # optional, each of these four
        weight: 1.5
        time_zone: America/Chicago
        caps: {leads_per_day: 100, spend_per_month_cents: 5000000}
        profiles:                  # replaces the buyer's profiles; see leadx.auction.selection.profiles
          - name: weekend push
            windows: [{from: "fri 08:00", to: "sun 21:00"}]
            criteria: [{states: [TX], price: 3000}]
"""

from __future__ import annotations

import math
import time

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from leadx.accounts.ids import UnknownAccount, new_account_id
from leadx.auction.caps.limits import Caps, CapsError
from leadx.auction.selection.market import AUTOBID, BUYER_KINDS
from leadx.auction.selection.profiles import Profile, ProfileError
from leadx.auction.selection.windows import WindowError, zone
from leadx.platform.db.models import Buyer, BuyerProfile

SETTINGS = ("kind", "weight", "time_zone", "caps")
MAX_WEIGHT = 100.0


def check_buyer_settings(kind: str | None = None, weight: float | None = None, time_zone: str | None = None,
                         caps: object = None, ping_url: str | None = None) -> None:
    """Raise ValueError with a readable reason for any setting that is not valid."""
    if kind is not None and kind not in BUYER_KINDS:
        raise ValueError(f"a buyer's kind is one of {', '.join(BUYER_KINDS)}")
    if kind is not None and kind != AUTOBID and ping_url is not None and not ping_url:
        raise ValueError("a wholesale buyer needs a ping URL (it is pinged to bid)")
    if weight is not None and (isinstance(weight, bool) or not isinstance(weight, (int, float))
                               or not math.isfinite(weight) or not 0 < weight <= MAX_WEIGHT):
        raise ValueError(f"a buyer's weight is a number above 0 and at most {MAX_WEIGHT:g}")
    try:
        if time_zone is not None:
            zone(time_zone)
        Caps.parse(caps)
    except (WindowError, CapsError) as error:
        raise ValueError(str(error)) from None


def update_buyer(session: Session, buyer_id: str, **settings) -> None:
    """Change any of a buyer's kind, weight, time_zone and caps."""
    unknown = set(settings) - set(SETTINGS)
    if unknown:
        raise ValueError(f"a buyer's settings are {', '.join(SETTINGS)}; not {', '.join(sorted(unknown))}")
    buyer = session.get(Buyer, buyer_id)
    if buyer is None:
        raise UnknownAccount(f"no buyer {buyer_id}")
    ping_url = buyer.ping_url if "kind" in settings else None
    check_buyer_settings(ping_url=ping_url, **settings)
    if "caps" in settings:
        settings["caps"] = Caps.parse(settings["caps"]).as_dict() or None
    session.execute(update(Buyer).where(Buyer.id == buyer_id).values(**settings))
    session.commit()


def replace_profiles(session: Session, buyer_id: str, specs: object) -> list[str]:
    """Replace all of a buyer's profiles with these documents (each checked first: none is stored
    unless all parse). The new profiles' ids."""
    if session.get(Buyer, buyer_id) is None:
        raise UnknownAccount(f"no buyer {buyer_id}")
    if not isinstance(specs, list):
        raise ValueError("profiles must be a list")
    ids = [new_account_id("p_") for _ in specs]
    for profile_id, spec in zip(ids, specs, strict=False):
        try:
            check_profile(profile_id, buyer_id, spec)
        except ProfileError as error:
            raise ValueError(str(error)) from None
    now = int(time.time() * 1000)
    session.execute(update(BuyerProfile).where(BuyerProfile.buyer_id == buyer_id).values(active=False))
    for profile_id, spec in zip(ids, specs, strict=False):
        # The row's `active` says the profile is current; a paused one (`active: false` in its
        # document) is current too, listed and kept, and bids for nothing.
        session.add(BuyerProfile(id=profile_id, buyer_id=buyer_id, name=spec["name"].strip(),
                                 spec=spec, active=True, created_at_ms=now))
    session.commit()
    return ids


def check_profile(profile_id: str, buyer_id: str, spec: object) -> Profile:
    """A new or changed profile document, checked (ProfileError): the parse rules, and `active`
    true or false when given."""
    profile = Profile.parse(profile_id, buyer_id, spec)
    assert isinstance(spec, dict)
    if not isinstance(spec.get("active", True), bool):
        raise ProfileError(f"profile {spec['name']!r}: active is true or false")
    return profile


class UnknownProfile(LookupError):
    """No current profile of this id belongs to the buyer."""


def current_profiles(session: Session, buyer_id: str) -> list[BuyerProfile]:
    """The buyer's profiles (paused ones too), by name then id."""
    return list(session.scalars(select(BuyerProfile).where(BuyerProfile.buyer_id == buyer_id,
                                                           BuyerProfile.active.is_(True))
                                .order_by(BuyerProfile.name, BuyerProfile.id)))


def _own_profile(session: Session, buyer_id: str, profile_id: str) -> BuyerProfile:
    row = session.get(BuyerProfile, profile_id)
    if row is None or row.buyer_id != buyer_id or not row.active:
        raise UnknownProfile(f"no profile {profile_id} of buyer {buyer_id}")
    return row


def save_profile(session: Session, buyer_id: str, profile_id: str | None, spec: dict) -> str:
    """Creates a profile (`profile_id` None) or changes one of the buyer's, checked first
    (ProfileError: nothing is stored), in one commit. A changed profile keeps its id, so the caps
    it has used today still count."""
    if session.get(Buyer, buyer_id) is None:
        raise UnknownAccount(f"no buyer {buyer_id}")
    row = _own_profile(session, buyer_id, profile_id) if profile_id else None
    new_id = profile_id or new_account_id("p_")
    check_profile(new_id, buyer_id, spec)
    if row is None:
        session.add(BuyerProfile(id=new_id, buyer_id=buyer_id, name=spec["name"].strip(), spec=spec, active=True,
                                 created_at_ms=int(time.time() * 1000)))
    else:
        row.name, row.spec = spec["name"].strip(), spec
    session.commit()
    return new_id


def set_profile_paused(session: Session, buyer_id: str, profile_id: str, paused: bool) -> None:
    row = _own_profile(session, buyer_id, profile_id)
    spec = {key: value for key, value in row.spec.items() if key != "active"}
    row.spec = {**spec, "active": False} if paused else spec  # a new dict: JSON columns see reassignment only
    session.commit()


def delete_profile(session: Session, buyer_id: str, profile_id: str) -> None:
    """Retires the profile: it no longer bids or is listed (its row stays, as replaced ones do)."""
    _own_profile(session, buyer_id, profile_id).active = False
    session.commit()


def buyer_settings(session: Session, buyer_id: str) -> dict:
    buyer = session.get(Buyer, buyer_id)
    if buyer is None:
        raise UnknownAccount(f"no buyer {buyer_id}")
    profiles = sorted(current_profiles(session, buyer_id), key=lambda p: p.id)
    return {"id": buyer.id, "name": buyer.name, "kind": buyer.kind, "weight": buyer.weight,
            "time_zone": buyer.time_zone, "caps": buyer.caps or {}, "ping_url": buyer.ping_url,
            "post_url": buyer.post_url, "active": buyer.active,
            "profiles": [{"id": p.id, **p.spec} for p in profiles]}


def import_document(session: Session, document: object) -> dict[str, list[str]]:
    """Apply an import document (see the module docstring): each buyer's settings and profiles.
    Every buyer entry is checked before any is applied. Returns {buyer id: new profile ids}."""
    if not isinstance(document, dict) or not isinstance(document.get("buyers"), list):
        raise ValueError("the document must have a 'buyers' list")
    entries = document["buyers"]
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            raise ValueError(f"buyers[{i}] needs the buyer's id")
        unknown = set(entry) - {"id", "profiles", *SETTINGS}
        if unknown:
            raise ValueError(f"buyers[{i}] has unknown keys {', '.join(sorted(unknown))}")
        if session.get(Buyer, entry["id"]) is None:
            raise UnknownAccount(f"buyers[{i}]: no buyer {entry['id']}")
        try:
            check_buyer_settings(**{k: entry[k] for k in SETTINGS if k in entry})
            profiles = entry.get("profiles") or []
            if not isinstance(profiles, list):
                raise ValueError("profiles must be a list")
            for spec in profiles:
                check_profile("p_check", entry["id"], spec)
        except (ValueError, ProfileError) as error:
            raise ValueError(f"buyers[{i}] ({entry['id']}): {error}") from None
    created = {}
    for entry in entries:
        settings = {k: entry[k] for k in SETTINGS if k in entry}
        if settings:
            update_buyer(session, entry["id"], **settings)
        if "profiles" in entry:
            created[entry["id"]] = replace_profiles(session, entry["id"], entry["profiles"] or [])
    return created
