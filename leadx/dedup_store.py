"""Duplicate protection in Redis.

Layout: one hash per identity key, `dd:<namespace><identity>`, whose fields are
- `*` — the platform-wide record: the last submission of this consumer, `"<ms>|<lead id>"`;
- `<buyer id>` — this consumer was posted to that buyer, `"<ms>|<lead id>"`.
It is the card's per-buyer sets transposed: keyed by identity, so one lead is checked against
every buyer in a single round trip whatever the number of buyers. Each entry carries its own
time, so the 30-day window is exact per entry; stale entries are pruned when read, and the key
expires a window after its newest write.

Both operations are Lua scripts, so each is atomic: two simultaneous submissions of one consumer
cannot both pass the platform check, and two awards of one consumer to one buyer cannot both win.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

# Returns {index of the identity that matched platform-wide (1-based) or 0, duplicate buyer ids...}
_CHECK_SUBMISSION = """
local now, window, lead = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local platform = ARGV[4] == '1'
local record = ARGV[5] == '1'
local cutoff = now - window
local matched = 0
local buyers = {}
for i, key in ipairs(KEYS) do
  local entries = redis.call('HGETALL', key)
  for j = 1, #entries, 2 do
    local field, value = entries[j], entries[j + 1]
    local sep = string.find(value, '|', 1, true)
    local ts, owner = tonumber(string.sub(value, 1, sep - 1)), string.sub(value, sep + 1)
    if ts <= cutoff then
      redis.call('HDEL', key, field)
    elseif owner ~= lead then
      if field == '*' then
        if platform and matched == 0 then matched = i end
      else
        buyers[field] = true
      end
    end
  end
end
if record and matched == 0 then
  for _, key in ipairs(KEYS) do
    redis.call('HSET', key, '*', now .. '|' .. lead)
    redis.call('PEXPIRE', key, window)
  end
end
local out = {matched}
for buyer, _ in pairs(buyers) do out[#out + 1] = buyer end
return out
"""

# Returns 1 when the consumer is now reserved for the buyer (or already was, by this same lead),
# 0 when another lead of the same consumer already went to that buyer inside the window.
_RESERVE_FOR_BUYER = """
local now, window, buyer, lead = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4]
local cutoff = now - window
for _, key in ipairs(KEYS) do
  local value = redis.call('HGET', key, buyer)
  if value then
    local sep = string.find(value, '|', 1, true)
    local ts, owner = tonumber(string.sub(value, 1, sep - 1)), string.sub(value, sep + 1)
    if ts > cutoff and owner ~= lead then return 0 end
  end
end
for _, key in ipairs(KEYS) do
  redis.call('HSET', key, buyer, now .. '|' .. lead)
  redis.call('PEXPIRE', key, window)
end
return 1
"""

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class SubmissionCheck:
    platform_duplicate_on: str | None  # the identity kind that matched platform-wide, if any
    duplicate_buyer_ids: frozenset[str]


class DedupStore:
    def __init__(self, redis: Redis, namespace: str = "", window_ms: int = 30 * DAY_MS) -> None:
        self.redis = redis
        self.namespace = namespace
        self.window_ms = window_ms
        self._check = redis.register_script(_CHECK_SUBMISSION)
        self._reserve = redis.register_script(_RESERVE_FOR_BUYER)

    def _keys(self, identities: dict[str, str]) -> tuple[list[str], list[str]]:
        kinds = list(identities)
        return kinds, [f"dd:{self.namespace}{identities[kind]}" for kind in kinds]

    async def check_submission(
        self, lead_id: str, identities: dict[str, str], now_ms: int, platform_scope: bool = True,
        record: bool | None = None,
    ) -> SubmissionCheck:
        """Platform-wide duplicate check when `platform_scope` is on, and the list of buyers that
        already received this consumer. A submission that is not a platform duplicate is recorded
        when `record` is on (by default: when the platform scope is); a PING only asks, and a
        direct sale is recorded without being checked platform-wide."""
        record = platform_scope if record is None else record
        kinds, keys = self._keys(identities)
        if not keys:
            return SubmissionCheck(None, frozenset())
        result = await self._check(
            keys=keys, args=[now_ms, self.window_ms, lead_id, "1" if platform_scope else "0",
                  "1" if record else "0"]
        )
        matched = int(result[0])
        buyers = frozenset(b.decode() if isinstance(b, bytes) else b for b in result[1:])
        return SubmissionCheck(kinds[matched - 1] if matched else None, buyers)

    async def reserve_for_buyer(self, buyer_id: str, lead_id: str, identity_keys: list[str],
                                now_ms: int) -> bool:
        """Atomically record that this consumer goes to `buyer_id`; False if it already has it."""
        keys = [f"dd:{self.namespace}{k}" for k in identity_keys]
        if not keys:
            return True
        return int(await self._reserve(keys=keys, args=[now_ms, self.window_ms, buyer_id, lead_id])) == 1
