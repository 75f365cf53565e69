"""Caps and budgets in Redis: what each buyer and each AutoBid profile bought this hour, day and
month (in the buyer's time zone), and an atomic check-and-count for every sale.

Keys, per owner (a buyer or a profile id) and period: `caps:<namespace><owner>:h:<hour>` (field
n: leads), `...:d:<day>` (n: leads, c: cents) and `...:m:<month>` (c: cents), each expiring after its
period is over. The auction reads them to leave capped buyers out (a filter: several auctions can be
open at once); delivery reserves a sale against them with one Lua script before it POSTs, so caps
hold exactly however many auctions close together, and releases it if the buyer does not take the
lead.

On a Redis Cluster a script or MULTI may only touch keys of one hash slot, and a sale is counted for
a buyer and its profile together: there every key of a buyer and of its profiles carries the buyer's
hash tag, `caps:<namespace>{<buyer>}<owner>:...`, so a buyer's counters all live in one slot. One
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

# KEYS: per owner, its hour, day and month keys. ARGV[1]: the price; then per owner its four
# limits (leads/hour, leads/day, cents/day, cents/month; -1 for none). Returns 0 and counts the
# sale for every owner, or the 1-based number of the first owner that a cap refuses.
_RESERVE = """
local price = tonumber(ARGV[1])
local owners = #KEYS / 3
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
  redis.call('EXPIRE', KEYS[1 + i * 3], ARGV[#ARGV - 2])
  redis.call('HINCRBY', KEYS[2 + i * 3], 'n', 1)
  redis.call('HINCRBY', KEYS[2 + i * 3], 'c', price)
  redis.call('EXPIRE', KEYS[2 + i * 3], ARGV[#ARGV - 1])
  redis.call('HINCRBY', KEYS[3 + i * 3], 'c', price)
  redis.call('EXPIRE', KEYS[3 + i * 3], ARGV[#ARGV])
end
return 0
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

    def encode(self) -> str:
        return f"{self.price_cents}|{' '.join(self.keys)}"

    @classmethod
    def decode(cls, text: str) -> Reservation:
        price, _, keys = text.partition("|")
        return cls(tuple(keys.split()), int(price))


class CapsStore:
    def __init__(self, redis: RedisClient, namespace: str = "") -> None:
        self.redis, self.namespace = redis, namespace
        self._reserve = redis.register_script(_RESERVE)

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

    async def reserve(self, owners: Sequence[CapOwner], price_cents: int, now_ms: int) -> Reservation | str:
        """Count a sale at this price for every owner, atomically, if no cap refuses it: the
        reservation, or the id of the owner whose cap refused it. The owners are one buyer and its
        profiles: on a cluster the script needs all their keys in the buyer's slot."""
        keys: list[str] = []
        args: list[int] = [price_cents]
        for owner in owners:
            keys.extend(self.keys(owner.id, owner.tz, now_ms, owner.buyer))
            # In the script's order, which is LIMITS': leads/hour, leads/day, cents/day, cents/month.
            args.extend(-1 if (limit := getattr(owner.caps, name)) is None else limit for name in LIMITS)
        if not keys:
            return Reservation((), price_cents)
        refused = await self._reserve(keys=keys, args=[*args, HOUR_TTL_S, DAY_TTL_S, MONTH_TTL_S])
        if refused:
            return owners[int(refused) - 1].id
        return Reservation(tuple(keys), price_cents)

    async def release(self, reservation: Reservation) -> None:
        """Take back a reservation whose lead the buyer did not take: one MULTI, all or nothing (on a
        cluster its keys are one buyer's, in one slot)."""
        if not reservation.keys:
            return
        pipe = self.redis.pipeline(transaction=True)
        for i, key in enumerate(reservation.keys):
            period = i % 3
            if period in (0, 1):
                pipe.hincrby(key, "n", -1)
            if period in (1, 2):
                pipe.hincrby(key, "c", -reservation.price_cents)
        await pipe.execute()
