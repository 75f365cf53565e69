"""Caps and budgets in Redis: what each buyer and each AutoBid profile bought this hour, day and
month (in the buyer's time zone), and an atomic check-and-count for every sale.

Keys, per owner (a buyer or a profile id) and period: `caps:<namespace><owner>:h:<hour>` (field
n: leads), `...:d:<day>` (n: leads, c: cents) and `...:m:<month>` (c: cents), each expiring after its
period is over. The auction reads them to leave capped buyers out (a filter: several auctions can be
open at once); delivery reserves a sale against them with one Lua script before it POSTs, so caps
hold exactly however many auctions close together, and releases it if the buyer does not take the
lead.

A sale is counted once however many times it is reserved: with the sale's id (its auction), the
script also writes a marker, `caps:<namespace><buyer>:sale:<sale>`, holding the reservation, and a
second reserve of that sale for that buyer returns it without counting again; the release deletes the
marker with the counts, so it gives the sale back at most once. A consumer-group rebalance can hand
an auction to a second delivery worker while the first is still posting it: without the marker each
counted the sale (a buyer's cap reached by half its leads), and a rejection gave back only one.

On a Redis Cluster a script or MULTI may only touch keys of one hash slot, and a sale is counted for
a buyer and its profile together: there every key of a buyer and of its profiles carries the buyer's
hash tag, `caps:<namespace>{<buyer>}<owner>:...`, so a buyer's counters (and markers) all live in one slot. One
Redis keeps the names above: deployments have live counters (a month's spend among them) that an
upgrade must not reset.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from leadx.auction.caps.limits import LIMITS, Caps, Usage, periods
from leadx.platform.redis.client import RedisClient, hash_tag

HOUR_TTL_S, DAY_TTL_S, MONTH_TTL_S = 2 * 3600, 2 * 86400, 32 * 86400

# KEYS: per owner, its hour, day and month keys; then the sale's marker. ARGV[1]: the price; then
# per owner its four limits (leads/hour, leads/day, cents/day, cents/month; -1 for none); then the
# counters' three TTLs, the marker's, and the reservation the marker keeps. Returns the reservation
# a marker already holds (the sale was counted before), 0 after counting the sale for every owner
# and writing the marker, or the 1-based number of the first owner that a cap refuses.
_RESERVE = """
local marker = KEYS[#KEYS]
local earlier = redis.call('GET', marker)
if earlier then
  return earlier
end
local price = tonumber(ARGV[1])
local owners = (#KEYS - 1) / 3
for i = 0, owners - 1 do
  local lh, ld, cd, cm = tonumber(ARGV[2 + i * 4]), tonumber(ARGV[3 + i * 4]), tonumber(ARGV[4 + i * 4]),
                         tonumber(ARGV[5 + i * 4])
  local hour_n = tonumber(redis.call('HGET', KEYS[1 + i * 3], 'n') or '0')
  local day = redis.call('HMGET', KEYS[2 + i * 3], 'n', 'c')
  local day_n, day_c = tonumber(day[1] or '0'), tonumber(day[2] or '0')
  local month_c = tonumber(redis.call('HGET', KEYS[3 + i * 3], 'c') or '0')
  if (lh >= 0 and hour_n + 1 > lh) or (ld >= 0 and day_n + 1 > ld) or (cd >= 0 and day_c + price > cd)
     or (cm >= 0 and month_c + price > cm) then
    return i + 1
  end
end
for i = 0, owners - 1 do
  redis.call('HINCRBY', KEYS[1 + i * 3], 'n', 1)
  redis.call('EXPIRE', KEYS[1 + i * 3], ARGV[#ARGV - 4])
  redis.call('HINCRBY', KEYS[2 + i * 3], 'n', 1)
  redis.call('HINCRBY', KEYS[2 + i * 3], 'c', price)
  redis.call('EXPIRE', KEYS[2 + i * 3], ARGV[#ARGV - 3])
  redis.call('HINCRBY', KEYS[3 + i * 3], 'c', price)
  redis.call('EXPIRE', KEYS[3 + i * 3], ARGV[#ARGV - 2])
end
redis.call('SET', marker, ARGV[#ARGV], 'EX', ARGV[#ARGV - 1])
return 0
"""

# KEYS: the sale's marker, then the reservation's hour, day and month keys per owner. ARGV[1]: the
# price. Gives the sale back only if the marker was there, deleting it: a second release is a no-op.
_RELEASE = """
if redis.call('DEL', KEYS[1]) == 0 then
  return 0
end
local price = tonumber(ARGV[1])
for i = 2, #KEYS do
  local period = (i - 2) % 3
  if period < 2 then
    redis.call('HINCRBY', KEYS[i], 'n', -1)
  end
  if period > 0 then
    redis.call('HINCRBY', KEYS[i], 'c', -price)
  end
end
return 1
"""


@dataclass(frozen=True)
class CapOwner:
    id: str  # a buyer or a profile id
    tz: ZoneInfo
    caps: Caps = Caps()
    buyer_id: str = ""  # a profile's buyer ("" for a buyer: itself), whose slot its counters share

    @property
    def buyer(self) -> str:
        return self.buyer_id or self.id


@dataclass(frozen=True)
class Reservation:
    """A sale counted against caps: the keys it was counted in, to take it back exactly."""

    keys: tuple[str, ...]
    price_cents: int
    marker: str = ""  # the sale's marker ("": a reservation noted before markers, or of no sale id)

    def encode(self) -> str:
        text = f"{self.price_cents}|{' '.join(self.keys)}"
        return f"{text}|{self.marker}" if self.marker else text

    @classmethod
    def decode(cls, text: str) -> Reservation:
        price, keys, marker = ([*text.split("|"), ""])[:3]
        return cls(tuple(keys.split()), int(price), marker)


class CapsStore:
    def __init__(self, redis: RedisClient, namespace: str = "") -> None:
        self.redis, self.namespace = redis, namespace
        self._reserve = redis.register_script(_RESERVE)
        self._release = redis.register_script(_RELEASE)

    def keys(self, owner: str, tz: ZoneInfo, now_ms: int, buyer: str = "") -> tuple[str, str, str]:
        """The hour, day and month keys of `owner`, a buyer or a profile of `buyer` ("": a buyer)."""
        p = periods(now_ms, tz)
        base = f"caps:{self.namespace}{hash_tag(self.redis, buyer or owner)}{owner}"  # see above
        return f"{base}:h:{p.hour}", f"{base}:d:{p.day}", f"{base}:m:{p.month}"

    async def usage(self, owners: Sequence[tuple[str, ZoneInfo, str]], now_ms: int) -> dict[str, Usage]:
        """Each owner's usage in its current periods, in one round trip (one per node on a cluster).
        An owner is (buyer or profile id, the buyer's zone, the buyer's id)."""
        if not owners:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        for owner, tz, buyer in owners:
            hour, day, month = self.keys(owner, tz, now_ms, buyer)
            pipe.hget(hour, "n")
            pipe.hmget(day, "n", "c")
            pipe.hget(month, "c")
        replies = await pipe.execute()
        out = {}
        for i, (owner, _, _) in enumerate(owners):
            hour_n, (day_n, day_c), month_c = replies[i * 3:i * 3 + 3]
            out[owner] = Usage(int(hour_n or 0), int(day_n or 0), int(day_c or 0), int(month_c or 0))
        return out

    def marker(self, buyer: str, sale: str) -> str:
        return f"caps:{self.namespace}{hash_tag(self.redis, buyer)}{buyer}:sale:{sale}"

    async def reserve(self, owners: Sequence[CapOwner], price_cents: int, now_ms: int,
                      sale: str) -> Reservation | str:
        """Count `sale` (an auction's id) at this price for every owner, atomically, if no cap
        refuses it: the reservation, or the id of the owner whose cap refused it. A sale reserved
        before (and not released) is not counted again: its first reservation is returned. The
        owners are one buyer and its profiles: on a cluster the script needs all their keys, and the
        marker, in the buyer's slot."""
        keys: list[str] = []
        args: list[int | str] = [price_cents]
        for owner in owners:
            keys.extend(self.keys(owner.id, owner.tz, now_ms, owner.buyer))
            # In the script's order, which is LIMITS': leads/hour, leads/day, cents/day, cents/month.
            args.extend(-1 if (limit := getattr(owner.caps, name)) is None else limit for name in LIMITS)
        if not keys:
            return Reservation((), price_cents)
        reservation = Reservation(tuple(keys), price_cents, self.marker(owners[0].buyer, sale))
        # The marker lives as long as a day's counters: a release after that (an auction redelivered
        # after a two-day outage) gives nothing back, rather than take from a later period.
        answer = await self._reserve(keys=[*keys, reservation.marker],
                                     args=[*args, HOUR_TTL_S, DAY_TTL_S, MONTH_TTL_S, DAY_TTL_S,
                                           reservation.encode()])
        if isinstance(answer, bytes):
            return Reservation.decode(answer.decode())  # counted before, perhaps in another hour
        if answer:
            return owners[int(answer) - 1].id
        return reservation

    async def release(self, reservation: Reservation) -> None:
        """Take back a reservation whose lead the buyer did not take, all or nothing (on a cluster
        its keys are one buyer's, in one slot). With a marker, at most once however often called."""
        if not reservation.keys:
            return
        if reservation.marker:
            await self._release(keys=[reservation.marker, *reservation.keys], args=[reservation.price_cents])
            return
        # A reservation noted before markers (an auction in flight across the upgrade): one MULTI.
        pipe = self.redis.pipeline(transaction=True)
        for i, key in enumerate(reservation.keys):
            period = i % 3
            if period in (0, 1):
                pipe.hincrby(key, "n", -1)
            if period in (1, 2):
                pipe.hincrby(key, "c", -reservation.price_cents)
        await pipe.execute()
