"""Duplicate protection in Redis: a compact, exact-window record of who has seen which consumer.

Layout (docs/dedup.md has the why): identities are 128-bit HMAC keys (leadx.pii). The first
`bucket_bits` bits pick a bucket hash `dd:<namespace><vertical>:<bucket hex>`; inside it the field
is the next 8 bytes of the identity and the value is a run of 11-byte records, one per scope that
has seen this consumer:

    3 bytes  buyer number (0 = the platform-wide record, the last submission of this consumer)
    4 bytes  seconds since the epoch when it was recorded
    4 bytes  fingerprint of the lead that made it (so a redelivered lead is not its own duplicate)

Buckets of a few dozen short fields stay in Redis's listpack encoding, which costs a few bytes per
field instead of a key's ~100; buyer ids are mapped to 3-byte numbers in `dd:<namespace>buyers`.
It is the card's per-buyer sets transposed: one lead is checked against every buyer with one read
per identity, in one round trip whatever the number of buyers. Every record carries its own time,
so the window is exact per entry; stale records are dropped when their identity is touched, and
each bucket is swept of stale records at most once a day when written (a marker field, the empty
string, holds the time of its last sweep), so memory stays bounded by the window plus a day.

Both operations are Lua scripts, so each is atomic: two simultaneous submissions of one consumer
cannot both pass the platform check, and two awards of one consumer to one buyer cannot both win.
Calls made in the same event-loop turn go to Redis in one pipeline (see _Pipeliner).
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

DAY_MS = 24 * 3600 * 1000
SWEEP_INTERVAL_S = 24 * 3600
DEFAULT_BUCKET_BITS = 18  # 262,144 buckets: ~40 identities each at 10 million

_RECORDS = """
local function u24(s, p) local a, b, c = string.byte(s, p, p + 2) return (a * 256 + b) * 256 + c end
local function u32(s, p) local a, b, c, d = string.byte(s, p, p + 3) return ((a * 256 + b) * 256 + c) * 256 + d end
local function bytes(n, width)
  local out = {}
  for i = width, 1, -1 do out[i] = string.char(n % 256); n = math.floor(n / 256) end
  return table.concat(out)
end
-- The records of one value still inside the window, as {number, time, owner, raw} tables.
local function fresh(value, cutoff)
  local out = {}
  for p = 1, #value - 10, 11 do
    local ts = u32(value, p + 3)
    if ts > cutoff then
      out[#out + 1] = {u24(value, p), ts, string.sub(value, p + 7, p + 10), string.sub(value, p, p + 10)}
    end
  end
  return out
end
local function join(records)
  local parts = {}
  for i, r in ipairs(records) do parts[i] = r[4] end
  return table.concat(parts)
end
-- Replace (or add) the record of `number`, keeping the others; a newer record of it stays (a
-- rebuild replays the past, and a worker's clock may lag another's).
local function put(records, number, now, owner)
  local out = {}
  for _, r in ipairs(records) do
    if r[1] == number and r[2] > now then return records end
    if r[1] ~= number then out[#out + 1] = r end
  end
  out[#out + 1] = {number, now, owner, bytes(number, 3) .. bytes(now, 4) .. owner}
  return out
end
local function store(key, field, records, value, ttl)
  local joined = join(records)
  if joined == value then return end
  if joined == '' then redis.call('HDEL', key, field) else redis.call('HSET', key, field, joined) end
  if ttl then redis.call('EXPIRE', key, ttl) end
end
-- Drop stale records from a whole bucket, at most once per sweep interval.
local function sweep(key, now, cutoff, interval)
  local last = redis.call('HGET', key, '')
  if last and u32(last, 1) > now - interval then return end
  local entries = redis.call('HGETALL', key)
  for j = 1, #entries, 2 do
    if entries[j] ~= '' then
      store(key, entries[j], fresh(entries[j + 1], cutoff), entries[j + 1], nil)
    end
  end
  redis.call('HSET', key, '', bytes(now, 4))
end
"""

# KEYS: the buyer map, then one bucket per identity. ARGV: now (s), window (s), owner, check
# platform, check buyers, record, sweep interval, then the field of each identity.
# Returns {index of the identity that matched platform-wide (1-based) or 0, duplicate buyer ids...}
_CHECK_SUBMISSION = _RECORDS + """
local now, window, owner = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local platform, buyers_too, record = ARGV[4] == '1', ARGV[5] == '1', ARGV[6] == '1'
local interval, cutoff, ttl = tonumber(ARGV[7]), now - window, window + tonumber(ARGV[7])
local matched, buyers, seen = 0, {}, {}
for i = 2, #KEYS do
  local key, field = KEYS[i], ARGV[6 + i]
  if record then sweep(key, now, cutoff, interval) end
  local value = redis.call('HGET', key, field) or ''
  local records = fresh(value, cutoff)
  for _, r in ipairs(records) do
    if r[3] ~= owner then
      if r[1] == 0 then
        if platform and matched == 0 then matched = i - 1 end
      elseif buyers_too then
        buyers[r[1]] = true
      end
    end
  end
  seen[i] = {value, records}
end
for i = 2, #KEYS do
  local records = seen[i][2]
  if record and matched == 0 then records = put(records, 0, now, owner) end
  store(KEYS[i], ARGV[6 + i], records, seen[i][1], ttl)
end
local out = {matched}
for number, _ in pairs(buyers) do out[#out + 1] = redis.call('HGET', KEYS[1], 'n:' .. number) end
return out
"""

# KEYS: the buyer map, then one bucket per identity. ARGV: now (s), window (s), owner, buyer id,
# sweep interval, then the field of each identity.
# Returns 1 when the consumer is now reserved for the buyer (or already was, by this same lead),
# 0 when another lead of the same consumer already went to that buyer inside the window.
_RESERVE_FOR_BUYER = _RECORDS + """
local now, window, owner, buyer = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4]
local interval, cutoff, ttl = tonumber(ARGV[5]), now - window, window + tonumber(ARGV[5])
local number = tonumber(redis.call('HGET', KEYS[1], 'b:' .. buyer))
if not number then
  number = redis.call('HINCRBY', KEYS[1], 'next', 1)
  redis.call('HSET', KEYS[1], 'b:' .. buyer, number, 'n:' .. number, buyer)
end
local seen = {}
for i = 2, #KEYS do
  local value = redis.call('HGET', KEYS[i], ARGV[4 + i]) or ''
  local records = fresh(value, cutoff)
  for _, r in ipairs(records) do
    if r[1] == number and r[3] ~= owner then return 0 end
  end
  seen[i] = {value, records}
end
for i = 2, #KEYS do
  sweep(KEYS[i], now, cutoff, interval)
  store(KEYS[i], ARGV[4 + i], put(seen[i][2], number, now, owner), seen[i][1], ttl)
end
return 1
"""


@dataclass(frozen=True)
class SubmissionCheck:
    platform_duplicate_on: str | None  # the identity kind that matched platform-wide, if any
    duplicate_buyer_ids: frozenset[str]


def lead_fingerprint(lead_id: str) -> bytes:
    """4 bytes naming a lead inside its records: two leads of one consumer share them with odds
    of 1 in 4 billion, which would let the later one pass as a redelivery of the earlier."""
    return hashlib.blake2b(lead_id.encode(), digest_size=4).digest()


class DedupStore:
    def __init__(self, redis: Redis, namespace: str = "", bucket_bits: int = DEFAULT_BUCKET_BITS,
                 sweep_interval_s: int = SWEEP_INTERVAL_S) -> None:
        if not 8 <= bucket_bits <= 24:
            raise ValueError("bucket_bits must be between 8 and 24")
        self.redis = redis
        self.namespace = namespace
        self.bucket_bits = bucket_bits
        self.sweep_interval_s = sweep_interval_s
        self.buyer_map_key = f"dd:{namespace}buyers"
        self._pipeliner = _Pipeliner(redis)
        self._check = self._pipeliner.script(_CHECK_SUBMISSION)
        self._reserve = self._pipeliner.script(_RESERVE_FOR_BUYER)

    @property
    def round_trips(self) -> int:
        return self._pipeliner.round_trips

    def location(self, vertical: str, identity: str) -> tuple[str, bytes]:
        """The bucket key and field of one identity key (32 hex digits)."""
        raw = bytes.fromhex(identity)
        bucket = int.from_bytes(raw[:3], "big") >> (24 - self.bucket_bits)
        return f"dd:{self.namespace}{vertical}:{bucket:x}", raw[3:11]

    def _locate(self, vertical: str, identities: list[str]) -> tuple[list[str], list[bytes]]:
        keys, fields = [self.buyer_map_key], []
        for identity in identities:
            key, field = self.location(vertical, identity)
            keys.append(key)
            fields.append(field)
        return keys, fields

    async def check_submission(
        self, lead_id: str, vertical: str, identities: dict[str, str], now_ms: int, window_ms: int, *,
        platform: bool = True, buyers: bool = True, record: bool = True,
    ) -> SubmissionCheck:
        """Whether this consumer is a platform-wide duplicate (when `platform`), and which buyers
        already received it (when `buyers`). With `record`, a submission that is not a platform
        duplicate becomes the consumer's platform record: a PING only asks, and a direct sale is
        recorded without being checked platform-wide."""
        kinds = list(identities)
        if not kinds:
            return SubmissionCheck(None, frozenset())
        keys, fields = self._locate(vertical, [identities[k] for k in kinds])
        result = await self._check(keys, [
            now_ms // 1000, window_ms // 1000, lead_fingerprint(lead_id), int(platform), int(buyers),
            int(record), self.sweep_interval_s, *fields])
        matched = int(result[0])
        duplicates = frozenset(b.decode() for b in result[1:] if b is not None)
        return SubmissionCheck(kinds[matched - 1] if matched else None, duplicates)

    async def reserve_for_buyer(self, buyer_id: str, lead_id: str, vertical: str, identities: list[str],
                                now_ms: int, window_ms: int) -> bool:
        """Atomically record that this consumer goes to `buyer_id`; False if it already has it."""
        if not identities:
            return True
        keys, fields = self._locate(vertical, identities)
        result = await self._reserve(keys, [
            now_ms // 1000, window_ms // 1000, lead_fingerprint(lead_id), buyer_id,
            self.sweep_interval_s, *fields])
        return int(result) == 1


class _Script:
    def __init__(self, pipeliner: _Pipeliner, source: str) -> None:
        self.pipeliner = pipeliner
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def __call__(self, keys: list[str], args: list) -> asyncio.Future:
        return self.pipeliner.submit(self, keys, args)


class _Pipeliner:
    """Sends the script calls made in one event-loop turn as one pipeline: a dedup worker handles
    a Kafka batch concurrently, so its checks share round trips instead of each paying one. A
    script Redis does not know (restarted, flushed) is loaded and the call retried once."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.round_trips = 0  # pipelines sent: what bench/dedup.py reports per lead
        self._pending: list[tuple[_Script, list[str], list, asyncio.Future]] = []

    def script(self, source: str) -> _Script:
        return _Script(self, source)

    def submit(self, script: _Script, keys: list[str], args: list) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((script, keys, args, future))
        if len(self._pending) == 1:
            loop.call_soon(lambda: asyncio.ensure_future(self._flush()))
        return future

    async def _flush(self) -> None:
        batch, self._pending = self._pending, []
        try:
            results = await self._execute(batch)
            missing = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
            if missing:
                for script in {batch[i][0] for i in missing}:
                    await self.redis.script_load(script.source)
                retried = await self._execute([batch[i] for i in missing])
                for i, result in zip(missing, retried, strict=True):
                    results[i] = result
        except Exception as error:  # noqa: BLE001 - every waiting caller gets the failure
            results = [error] * len(batch)
        for (_, _, _, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def _execute(self, batch) -> list:
        self.round_trips += 1
        pipe = self.redis.pipeline(transaction=False)
        for script, keys, args, _ in batch:
            pipe.evalsha(script.sha, len(keys), *keys, *args)
        return await pipe.execute(raise_on_error=False)
