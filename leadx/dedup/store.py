"""Duplicate protection in Redis: a compact, exact-window record of who has seen which consumer.

Layout (docs/dedup.md has the why): identities are 128-bit HMAC keys (leadx.leads.pii). The first
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
string, holds the time of its last sweep; the sweep also renews the bucket's expiry to the window
plus two days), so memory stays bounded by the window plus a day and an idle bucket disappears.

Both operations are Lua scripts, so each is atomic: two simultaneous submissions of one consumer
cannot both pass the platform check, and two awards of one consumer to one buyer cannot both win.
Calls made in the same event-loop turn go to Redis in one pipeline (leadx.platform.redis.pipeline).

An epoch key (`dd-state:<namespace>epoch`) says the records are complete. A Redis restarted without its
data has none, and the check and award scripts refuse to run without it (DedupStateLost), in the
same atomic run as their reads and writes: no check answers "new" and no award wins on an emptied
Redis. Only a rebuild from SQL (leadx.dedup.rebuild), holding the rebuild lock, writes records
without the epoch, and it writes the epoch once done (docs/dedup.md#when-redis-loses-its-data).

While the HMAC key is rotated (docs/dedup.md#rotating-the-identity-key) a consumer has one
identity key per listed key id: a call names them all (leadx.leads.pii.identity_keys_under), and
its script reads the records under every one of them but writes under the current key's only. The
current key is the key id of the first identity key given (an event's `identity_keys` list the
current key's first). One call is still one script run, atomic over every key id, so simultaneous
copies of one consumer are told apart whichever key each worker holds as current.

On a Redis Cluster (docs/dedup.md#on-redis-cluster) one script cannot span the nodes that serve a
consumer's buckets. The buckets are then spread over CLUSTER_SHARDS shards, each with its own
epoch, rebuild lock and buyer map in the slot of its hash tag `{<namespace>s<shard>}`. A lead's
shards are taken in ascending order, consecutive shards served by one node in one script call, and
a lead found taken by a later call undoes its own writes in the calls already made: ordered
acquisition, so two leads that share identities meet first in the calls that cover the lowest
shard they share, on its node, where one script decides and exactly one of them passes.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import secrets
from dataclasses import dataclass

from collections.abc import Awaitable, Mapping, Sequence

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ResponseError

from leadx.leads.pii import untagged
from leadx.platform.redis.client import read_layout
from leadx.platform.redis.pipeline import Pipeliner

SWEEP_INTERVAL_S = 24 * 3600
STATE_LOST = "DEDUPLOST"  # the error code of a script refused for want of an epoch
DEFAULT_BUCKET_BITS = 18  # 262,144 buckets: ~40 identities each at 10 million
# Shards on a Redis Cluster: each is one hash slot, so 256 spread over the primaries evenly enough
# (about 85 each on three), and cost 256 small keys of state (epoch, lock, buyer map) apiece.
CLUSTER_SHARDS = 256

# The check, award and release scripts run over one or more shards' keys: on a Redis Cluster, a run
# of consecutive shards served by one node. A call's declared keys must share a slot, so KEYS are
# the first shard's and the other shards' keys follow the script's fixed arguments in ARGV;
# allow-cross-slot-keys lets the script use them (the node still refuses keys it does not serve,
# checked on each shard's epoch before anything is written). The keys, shard after shard: the
# shard's epoch, its rebuild lock and its buyer map, then one bucket per identity of the shard.
# ARGV[1] ends with two numbers per shard: how many identities it has, and how many of them (the
# first) are recorded under.
_RECORDS = """#!lua flags=allow-cross-slot-keys
local byte, char, sub, floor = string.byte, string.char, string.sub, math.floor
-- Every key of the call: those declared (the first shard's: a cluster routes a call by its declared
-- keys, which must share a slot), then the other shards', after the script's `fixed` arguments.
local K = {}
local function keys_after(fixed)
  for i = 1, #KEYS do K[i] = KEYS[i] end
  for j = fixed + 1, #ARGV do K[#K + 1] = ARGV[j] end
end
-- The shards of the call, from the numbers of ARGV[1] after its first `skip`: for each, the index in
-- K of its epoch, lock and map, of its first and last bucket and of its last bucket recorded under,
-- and the position of its first identity among the call's (for its field in ARGV[2]).
local function shards_of(n, skip)
  local out, k, position = {}, 1, 1
  for g = skip + 1, #n, 2 do
    local count, written = n[g], n[g + 1]
    out[#out + 1] = {epoch = k, lock = k + 1, map = k + 2, first = k + 3, last = k + 2 + count,
                     last_written = k + 2 + written, position = position}
    k = k + 3 + count
    position = position + count
  end
  return out
end
-- Whether a shard's records may be read and written: its epoch is there (the state is complete),
-- or the caller rebuilds it and holds its lock under `token`. A Redis that lost its data has neither.
local function intact(shard, token)
  if redis.call('EXISTS', K[shard.epoch]) == 1 then return true end
  return token ~= '' and redis.call('GET', K[shard.lock]) == token
end
local function all_intact(shards, token)
  for _, shard in ipairs(shards) do
    if not intact(shard, token) then return false end
  end
  return true
end
local LOST = '""" + STATE_LOST + """ the dedup records are not known to be complete (no epoch): ' ..
  'Redis lost its data; a rebuild from SQL restores them'

local function u24(s, p) local a, b, c = byte(s, p, p + 2) return (a * 256 + b) * 256 + c end
local function u32(s, p) local a, b, c, d = byte(s, p, p + 3) return ((a * 256 + b) * 256 + c) * 256 + d end
local function u24bytes(n) return char(floor(n / 65536) % 256, floor(n / 256) % 256, n % 256) end
local function u32bytes(n) return char(floor(n / 16777216) % 256) .. u24bytes(n) end
local function record(number, now, owner) return u24bytes(number) .. u32bytes(now) .. owner end
-- ARGV[1]: the numbers of the call, space-separated; ARGV[2]: the lead's 4-byte fingerprint then
-- the 8-byte field of each identity (two arguments instead of a dozen: cheaper to send and parse).
local function numbers(text)
  local out = {}
  for n in string.gmatch(text, '%d+') do out[#out + 1] = tonumber(n) end
  return out
end
-- The call's identity at this position, and the one whose bucket is K[i] in `shard`.
local function position_of(shard, i) return shard.position + i - shard.first end
local function field(shard, i)
  local p = position_of(shard, i)
  return sub(ARGV[2], 5 + (p - 1) * 8, 4 + p * 8)
end
local owner = sub(ARGV[2], 1, 4)
-- The records of one value still inside the window, each as its 11-byte string.
local function fresh(value, cutoff)
  local out = {}
  for p = 1, #value - 10, 11 do
    if u32(value, p + 3) > cutoff then out[#out + 1] = sub(value, p, p + 10) end
  end
  return out
end
-- Replace (or add) the record of `number`, keeping the others; a newer record of it stays (a
-- rebuild replays the past, and a worker's clock may lag another's).
local function put(records, number, now, owner)
  local out = {}
  for _, r in ipairs(records) do
    local n = u24(r, 1)
    if n == number and u32(r, 4) > now then return records end
    if n ~= number then out[#out + 1] = r end
  end
  out[#out + 1] = record(number, now, owner)
  return out
end
local function store(key, field, records, value)
  local joined = table.concat(records)
  if joined == value then return end
  if joined == '' then redis.call('HDEL', key, field) else redis.call('HSET', key, field, joined) end
end
-- Drop stale records from a whole bucket and renew its expiry. Done at most once per interval
-- (when written), so the expiry (window + two intervals) always outlives the newest record.
local function sweep(key, now, cutoff, window, interval)
  local entries = redis.call('HGETALL', key)
  for j = 1, #entries, 2 do
    if entries[j] ~= '' then store(key, entries[j], fresh(entries[j + 1], cutoff), entries[j + 1]) end
  end
  redis.call('HSET', key, '', u32bytes(now))
  redis.call('EXPIRE', key, window + 2 * interval)
end
-- One identity's value; when about to write, the bucket is swept first if its sweep is due.
local function read(key, field, now, cutoff, window, interval, writing)
  local got = redis.call('HMGET', key, '', field)
  if writing and (not got[1] or u32(got[1], 1) <= now - interval) then
    sweep(key, now, cutoff, window, interval)
    return redis.call('HGET', key, field) or ''
  end
  return got[2] or ''
end
"""

# Keys: per shard, as above; in each, the identity keys recorded under first.
# ARGV[1]: now (s), window (s), sweep interval (s), check platform, check buyers, record (1/0), then
# per shard its identities and how many are recorded under (the current key's; the others are only
# read). ARGV[2]: owner and fields. ARGV[3]: the rebuild's lock token, or empty.
# Returns {one character per identity of the call, '1' where it is recorded platform-wide by another
# lead (when checked), else '0'; then the ids of the buyers that already have the consumer...}.
# Nothing is recorded when any identity matched.
# Refused (an error reply) when any shard's state is not intact: a check on an emptied Redis would
# call every consumer new, even a PING's, which records nothing.
_CHECK_SUBMISSION = _RECORDS + """
keys_after(3)
local n = numbers(ARGV[1])
local shards = shards_of(n, 6)
if not all_intact(shards, ARGV[3]) then return redis.error_reply(LOST) end
local now, window, interval = n[1], n[2], n[3]
local platform, buyers_too, record = n[4] == 1, n[5] == 1, n[6] == 1
local cutoff = now - window
local matched, hits, seen = false, {}, {}
for _, shard in ipairs(shards) do
  shard.buyers = {}
  for i = shard.first, shard.last do
    local f = field(shard, i)
    local value = read(K[i], f, now, cutoff, window, interval, record and i <= shard.last_written)
    local records = fresh(value, cutoff)
    local hit = '0'
    for _, r in ipairs(records) do
      if sub(r, 8, 11) ~= owner then
        local number = u24(r, 1)
        if number == 0 then
          if platform then hit, matched = '1', true end
        elseif buyers_too then
          shard.buyers[number] = true
        end
      end
    end
    hits[#hits + 1] = hit
    seen[i] = {value, records, f}
  end
end
for _, shard in ipairs(shards) do
  for i = shard.first, shard.last do
    local records = seen[i][2]
    if record and not matched and i <= shard.last_written then records = put(records, 0, now, owner) end
    store(K[i], seen[i][3], records, seen[i][1])
  end
end
local out = {table.concat(hits)}
for _, shard in ipairs(shards) do
  for number, _ in pairs(shard.buyers) do out[#out + 1] = redis.call('HGET', K[shard.map], 'n:' .. number) end
end
return out
"""

# Keys: per shard, as above; in each, the identity keys recorded under first.
# ARGV[1]: now (s), window (s), sweep interval (s), then per shard its identities and how many are
# recorded under. ARGV[2]: owner and fields. ARGV[3]: the buyer id. ARGV[4]: the rebuild's lock
# token, or empty.
# Returns 1 when the consumer is now reserved for the buyer in every shard of the call (or already
# was, by this same lead), 0 when another lead of the same consumer already went to that buyer
# inside the window (then nothing is reserved). Buyers are numbered per shard (its buyer map).
# Refused (an error reply) when any shard's state is not intact: on an emptied Redis every buyer would win.
_RESERVE_FOR_BUYER = _RECORDS + """
keys_after(4)
local n = numbers(ARGV[1])
local shards = shards_of(n, 3)
if not all_intact(shards, ARGV[4]) then return redis.error_reply(LOST) end
local now, window, interval, buyer = n[1], n[2], n[3], ARGV[3]
local cutoff = now - window
local seen = {}
for _, shard in ipairs(shards) do
  local map = K[shard.map]
  local number = tonumber(redis.call('HGET', map, 'b:' .. buyer))
  if not number then
    number = redis.call('HINCRBY', map, 'next', 1)
    redis.call('HSET', map, 'b:' .. buyer, number, 'n:' .. number, buyer)
  end
  shard.number = number
  for i = shard.first, shard.last do
    local f = field(shard, i)
    local value = read(K[i], f, now, cutoff, window, interval, i <= shard.last_written)
    local records = fresh(value, cutoff)
    for _, r in ipairs(records) do
      if u24(r, 1) == number and sub(r, 8, 11) ~= owner then return 0 end
    end
    seen[i] = {value, records, f}
  end
end
for _, shard in ipairs(shards) do
  for i = shard.first, shard.last_written do
    store(K[i], seen[i][3], put(seen[i][2], shard.number, now, owner), seen[i][1])
  end
end
return 1
"""


# Keys: per shard, as above. ARGV[1]: now (s), window (s), sweep interval (s), then per shard its
# identities and how many are recorded under (unused here). ARGV[2]: owner and fields. ARGV[3]: the
# buyer id, or empty for the platform record. Drops that scope's records made by this lead, under
# every identity key given. Not guarded by the epoch: it only ever removes this lead's own record,
# which an emptied Redis does not hold.
_RELEASE_FOR_BUYER = _RECORDS + """
keys_after(3)
local n = numbers(ARGV[1])
local cutoff = n[1] - n[2]
local released = 0
for _, shard in ipairs(shards_of(n, 3)) do
  local number = 0
  if ARGV[3] ~= '' then number = tonumber(redis.call('HGET', K[shard.map], 'b:' .. ARGV[3])) end
  if number then
    for i = shard.first, shard.last do
      local f = field(shard, i)
      local value = redis.call('HGET', K[i], f) or ''
      local kept = {}
      for _, r in ipairs(fresh(value, cutoff)) do
        if u24(r, 1) == number and sub(r, 8, 11) == owner then released = 1 else kept[#kept + 1] = r end
      end
      store(K[i], f, kept, value)
    end
  end
end
return released
"""

# KEYS: the epoch, the rebuild lock. ARGV[1]: the lock's token, ARGV[2]: the epoch's value.
# The epoch is written only by the holder of the lock, once it made the state complete.
_SEAL_EPOCH = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1
"""

# KEYS: the rebuild lock. ARGV[1]: the token, ARGV[2]: milliseconds to live (0: release it).
_KEEP_LOCK = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '0' then redis.call('DEL', KEYS[1]) else redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
"""


class DedupStateLost(ResponseError):
    """Redis holds no epoch: its dedup records are not known to be complete (it restarted without
    its data, or was flushed). No check or award can be trusted until a rebuild from SQL
    (leadx.dedup.rebuild) writes the epoch again. A RedisError, so a caller that answers a Redis
    outage (the intake: 503, retry) answers this the same way."""


@dataclass(frozen=True)
class SubmissionCheck:
    platform_duplicate_on: str | None  # the identity kind that matched platform-wide, if any
    duplicate_buyer_ids: frozenset[str]


def encode_record(buyer_number: int, at_s: int, lead_id: str) -> bytes:
    """One 11-byte record as the scripts write it (for bulk loads such as bench/dedup.py)."""
    return buyer_number.to_bytes(3, "big") + at_s.to_bytes(4, "big") + lead_fingerprint(lead_id)


def lead_fingerprint(lead_id: str) -> bytes:
    """4 bytes naming a lead inside its records: two leads of one consumer share them with odds
    of 1 in 4 billion, which would let the later one pass as a redelivery of the earlier."""
    return hashlib.blake2b(lead_id.encode(), digest_size=4).digest()


class DedupStore:
    def __init__(self, redis: Redis | RedisCluster, namespace: str = "", bucket_bits: int = DEFAULT_BUCKET_BITS,
                 sweep_interval_s: int = SWEEP_INTERVAL_S, shards: int | None = None,
                 wait_replicas: int = 0, wait_timeout_ms: int = 500) -> None:
        """`shards`: 1 on one Redis (the keys as they always were), CLUSTER_SHARDS on a cluster;
        another count only for tests of the sharded calls on one Redis. Changing it is changing
        where every record lives: a rebuild from SQL (`leadx dedup rebuild`) moves them.
        `wait_replicas`: a call succeeds only once that many replicas hold what it wrote
        (REDIS_WAIT_REPLICAS; leadx.platform.redis.pipeline)."""
        if not 8 <= bucket_bits <= 24:
            raise ValueError("bucket_bits must be between 8 and 24")
        self.shards = shards or (CLUSTER_SHARDS if isinstance(redis, RedisCluster) else 1)
        if not 1 <= self.shards <= 1 << bucket_bits:
            raise ValueError("shards must be between 1 and the number of buckets")
        self.redis = redis
        self.namespace = namespace
        self.bucket_bits = bucket_bits
        self.sweep_interval_s = sweep_interval_s
        # Shard 0's; on one Redis, the only ones. The records are under `dd:` (buckets and buyer
        # maps); the epoch and the lock outside it, so that a flush (leadx.dedup.rebuild.flush)
        # deletes the epochs with the records, never the locks.
        self.buyer_map_key, self.epoch_key, self.lock_key = self.state_keys(0)
        # Made once: a call's keys are built per lead, and on a cluster once per shard it touches.
        self._bucket_prefixes = [f"dd:{namespace}{self._tag(shard)}" for shard in range(self.shards)]
        self._shard_keys = [[epoch, lock, buyer_map] for buyer_map, epoch, lock in map(self.state_keys,
                                                                                     range(self.shards))]
        self._bucket_shift = 24 - bucket_bits
        self._cluster = redis if isinstance(redis, RedisCluster) else None
        # Each shard's hash slot (of its hash tag), to find the node serving it.
        self._shard_slots = ([self._cluster.keyslot(epoch) for epoch, _, _ in self._shard_keys]
                             if self._cluster is not None else [])
        self._token = ""  # a rebuild's lock token (`rebuilding`): its writes pass without an epoch
        self._pipeliner = Pipeliner(redis, wait_replicas, wait_timeout_ms)
        self._check = self._pipeliner.script(_CHECK_SUBMISSION)
        self._reserve = self._pipeliner.script(_RESERVE_FOR_BUYER)
        self._release = self._pipeliner.script(_RELEASE_FOR_BUYER)
        self._seal = self._pipeliner.script(_SEAL_EPOCH)
        self._keep_lock = self._pipeliner.script(_KEEP_LOCK)

    def rebuilding(self, token: str) -> DedupStore:
        """This store as a rebuild's: its checks and awards are let through without an epoch for as
        long as `token` holds the rebuild lock, and refused as soon as it does not."""
        view = copy.copy(self)
        view._token = token
        return view

    def _tag(self, shard: int) -> str:
        """The hash tag that puts one shard's keys in one slot; none on one Redis."""
        return "" if self.shards == 1 else f"{{{self.namespace}s{shard:x}}}"

    def state_keys(self, shard: int) -> tuple[str, str, str]:
        """A shard's buyer map, epoch and rebuild lock."""
        tag = self._tag(shard)
        return (f"dd:{self.namespace}{tag}buyers", f"dd-state:{self.namespace}{tag}epoch",
                f"dd-state:{self.namespace}{tag}rebuild")

    def _every_shard(self, call) -> Awaitable[list]:
        """`call(buyer map, epoch, lock)` for every shard, side by side (pipelined)."""
        return asyncio.gather(*(call(*self.state_keys(shard)) for shard in range(self.shards)))

    async def intact(self) -> bool:
        """Whether every shard's epoch is there: the records are complete since a start or a
        rebuild wrote them. A cluster node that lost its data loses the epochs of its shards."""
        found = await self._every_shard(lambda _, epoch, __: self._pipeliner.command("EXISTS", epoch))
        return all(int(n) == 1 for n in found)

    async def take_rebuild_lock(self, ttl_ms: int) -> str | None:
        """The lock one rebuild at a time holds (every shard's, under one token): its token, or
        None when another holds it (then none is kept)."""
        token = secrets.token_hex(16)
        taken = await self._every_shard(
            lambda _, __, lock: self._pipeliner.command("SET", lock, token, "NX", "PX", ttl_ms))
        if all(taken):
            return token
        if any(taken):
            await self.release_rebuild_lock(token)
        return None

    async def keep_rebuild_lock(self, token: str, ttl_ms: int) -> bool:
        """Extend the lock while its rebuild runs; False if it is no longer this token's."""
        kept = await self._every_shard(lambda _, __, lock: self._keep_lock([lock], [token, ttl_ms]))
        return all(int(k) == 1 for k in kept)

    async def release_rebuild_lock(self, token: str) -> None:
        await self._every_shard(lambda _, __, lock: self._keep_lock([lock], [token, 0]))

    async def declare_intact(self, now_ms: int, lock_ttl_ms: int = 10_000) -> bool:
        """Write the epoch over the state as it is: for a first start, when SQL holds nothing the
        records would be rebuilt from (leadx.dedup.rebuild decides that). False if a rebuild holds
        the lock."""
        token = await self.take_rebuild_lock(lock_ttl_ms)
        if token is None:
            return False
        try:
            return await self.seal_epoch(token, now_ms)
        finally:
            await self.release_rebuild_lock(token)

    async def seal_epoch(self, token: str, now_ms: int) -> bool:
        """Write the epoch (the state is complete) while `token` holds the lock; False if it does not."""
        sealed = await self._every_shard(
            lambda _, epoch, lock: self._seal([epoch, lock], [token, f"{now_ms} {token}"]))
        return all(int(s) == 1 for s in sealed)

    @property
    def round_trips(self) -> int:
        return self._pipeliner.round_trips

    def location(self, vertical: str, identity: str) -> tuple[str, bytes]:
        """The bucket key and field of one identity key (32 hex digits)."""
        shard, key, field = self._place(vertical, identity)
        return key, field

    def _place(self, vertical: str, identity: str) -> tuple[int, str, bytes]:
        raw = bytes.fromhex(identity)
        bucket = int.from_bytes(raw[:3], "big") >> self._bucket_shift
        shard = bucket % self.shards
        return shard, f"{self._bucket_prefixes[shard]}{vertical}:{bucket:x}", raw[3:11]

    def _node_of(self, shard: int) -> str | int:
        """What a call's shards must share: on a Redis Cluster, the node serving the shard's slot;
        on one Redis split into shards (tests, bench/dedup.py), the shard itself, so that every
        shard is a call of its own, as on a cluster whose every shard is on a node of its own."""
        if self._cluster is None:
            return shard
        try:
            return self._cluster.nodes_manager.get_node_from_slot(self._shard_slots[shard]).name
        except Exception:  # noqa: BLE001 - a slot no node serves yet (a failover under way)
            # A call of its own is always right: the Pipeliner then finds its node, or fails it
            # as a Redis that did not answer.
            return shard

    async def _calls(self, vertical: str, identities: list[str], written: int) -> list[_Call]:
        """The script calls that cover these identities (the first `written` recorded under): their
        shards in ascending order, consecutive shards served by one node in one call, each shard
        with its epoch, lock and buyer map, then its identities' buckets (in the order given, so the
        recorded ones come first)."""
        if self.shards == 1:  # one Redis: one call, as it always was
            keys, fields = self._shard_keys[0].copy(), []
            for identity in identities:
                _, key, field = self._place(vertical, identity)
                keys.append(key)
                fields.append(field)
            return [_Call(keys, fields, list(range(len(identities))), [len(identities), written])]
        by_shard: dict[int, _Call] = {}
        for index, identity in enumerate(identities):
            shard, key, field = self._place(vertical, identity)
            part = by_shard.get(shard)
            if part is None:
                part = by_shard[shard] = _Call([], [], [], [0, 0])
            part.keys.append(key)
            part.fields.append(field)
            part.indices.append(index)
            part.shards[0] += 1
            part.shards[1] += index < written
        if self._cluster is not None:
            await read_layout(self._cluster)
        calls: list[_Call] = []
        last_node = None
        for shard in sorted(by_shard):
            part, node = by_shard[shard], self._node_of(shard)
            if node != last_node:
                calls.append(_Call([], [], [], []))
                last_node = node
            call = calls[-1]
            call.keys += self._shard_keys[shard] + part.keys
            call.fields += part.fields
            call.indices += part.indices
            call.shards += part.shards
        return calls

    async def check_submission(
        self, lead_id: str, vertical: str, identities: Mapping[str, str | Sequence[str]], now_ms: int,
        window_ms: int, *, platform: bool = True, buyers: bool = True, record: bool = True,
    ) -> SubmissionCheck:
        """Whether this consumer is a platform-wide duplicate (when `platform`), and which buyers
        already received it (when `buyers`). With `record`, a submission that is not a platform
        duplicate becomes the consumer's platform record: a PING only asks, and a direct sale is
        recorded without being checked platform-wide. `identities`: kind → its identity key, or
        its identity keys under each key id, the current key's first (pii.identity_keys_under).
        Raises DedupStateLost when Redis lost the records (no epoch), rather than answer "new"."""
        named = [(kind, entry) for kind, given in identities.items()
                 for entry in ([given] if isinstance(given, str) else given)]
        if not named:
            return SubmissionCheck(None, frozenset())
        kinds, written, identity_keys = _recorded_first(named)
        owner = lead_fingerprint(lead_id)
        matched: int | None = None  # the first identity (in the order given) found recorded platform-wide
        duplicates: set[str] = set()
        recorded: list[_Call] = []  # the calls that recorded the consumer
        head = f"{now_ms // 1000} {window_ms // 1000} {self.sweep_interval_s} {platform:d} {buyers:d}"
        for call in await self._calls(vertical, identity_keys, written):
            recording = record and matched is None
            result = await _refused_when_lost(self._check(call.declared, [
                f"{head} {recording:d} {call.header}", owner + b"".join(call.fields), self._token, *call.others]))
            duplicates.update(b.decode() for b in result[1:] if b is not None)
            hits = [call.indices[position] for position, hit in enumerate(result[0]) if hit == ord("1")]
            if hits:
                if matched is None and recorded:
                    await self._release_in(recorded, "", owner, now_ms, window_ms)
                # The calls after the first match are still read, so the identity named is the one
                # one script over them all would name (the first given), whichever shard it lies in.
                matched = min(*hits, matched if matched is not None else len(kinds))
            elif recording and call.written:
                recorded.append(call)
        return SubmissionCheck(kinds[matched] if matched is not None else None, frozenset(duplicates))

    async def reserve_for_buyer(self, buyer_id: str, lead_id: str, vertical: str, identities: Sequence[str],
                                now_ms: int, window_ms: int) -> bool:
        """Atomically record that this consumer goes to `buyer_id`; False if it already has it.
        `identities`: as an event's `identity_keys` lists them, the current key's first. Raises
        DedupStateLost when Redis lost the records: nothing can be awarded until they are rebuilt."""
        if not identities:
            return True
        _, written, identity_keys = _recorded_first([("", entry) for entry in identities])
        owner = lead_fingerprint(lead_id)
        reserved: list[_Call] = []
        for call in await self._calls(vertical, identity_keys, written):
            result = await _refused_when_lost(self._reserve(call.declared, [
                f"{now_ms // 1000} {window_ms // 1000} {self.sweep_interval_s} {call.header}",
                owner + b"".join(call.fields), buyer_id, self._token, *call.others]))
            if int(result) != 1:
                await self._release_in(reserved, buyer_id, owner, now_ms, window_ms)
                return False
            reserved.append(call)
        return True

    async def release_for_buyer(self, buyer_id: str, lead_id: str, vertical: str, identities: Sequence[str],
                                now_ms: int, window_ms: int) -> bool:
        """Undo this lead's reservation for `buyer_id`: for a post that provably never reached the
        buyer, which therefore has not seen the consumer. True if there was one to undo."""
        if not identities:
            return False
        calls = await self._calls(vertical, [untagged(entry)[1] for entry in identities], 0)
        return await self._release_in(calls, buyer_id, lead_fingerprint(lead_id), now_ms, window_ms)

    async def _release_in(self, calls: list[_Call], buyer_id: str, owner: bytes, now_ms: int,
                          window_ms: int) -> bool:
        """Drop this lead's records of one scope (`buyer_id`, or "" for the platform) in these
        calls' shards: what the calls made before a later one refused the lead. True if any was there."""
        released = await asyncio.gather(*(self._release(call.declared, [
            f"{now_ms // 1000} {window_ms // 1000} {self.sweep_interval_s} {call.header}",
            owner + b"".join(call.fields), buyer_id, *call.others]) for call in calls))
        return any(int(r) == 1 for r in released)


@dataclass
class _Call:
    """One script call's share of a lead's identities: those in a run of shards on one node."""
    keys: list[str]  # per shard: its epoch, lock and buyer map, then a bucket per identity
    fields: list[bytes]
    indices: list[int]  # of these identities in the list the caller gave
    shards: list[int]  # per shard: how many identities, how many of them (the first) recorded under

    @property
    def written(self) -> int:
        return sum(self.shards[1::2])

    @property
    def declared(self) -> list[str]:
        """The keys declared to Redis: the first shard's, which share its slot."""
        return self.keys[:3 + self.shards[0]]

    @property
    def others(self) -> list[str]:
        """The other shards' keys, passed after the script's fixed arguments."""
        return self.keys[3 + self.shards[0]:]

    @property
    def header(self) -> str:
        """The shards' counts, as the scripts read them at the end of ARGV[1]."""
        return " ".join(map(str, self.shards))


def _recorded_first(named: list[tuple[str, str]]) -> tuple[list[str], int, list[str]]:
    """(kind, tagged identity key) pairs put in a script's order: those under the key id of the first
    one (the current key), which are read and recorded under, then the others, which are only read.
    Returns their kinds and identity keys in that order, and how many are recorded under."""
    if not any(":" in entry for _, entry in named):  # all under the implicit key id: no rotation under way
        return [kind for kind, _ in named], len(named), [entry for _, entry in named]
    current = untagged(named[0][1])[0]
    recorded: list[tuple[str, str]] = []
    read_only: list[tuple[str, str]] = []
    for kind, entry in named:
        key_id, identity = untagged(entry)
        (recorded if key_id == current else read_only).append((kind, identity))
    ordered = recorded + read_only
    return [kind for kind, _ in ordered], len(recorded), [identity for _, identity in ordered]


async def _refused_when_lost(call: Awaitable):
    """A guarded script's reply, its refusal for want of an epoch raised as DedupStateLost."""
    try:
        return await call
    except ResponseError as error:
        if str(error).startswith(STATE_LOST):
            raise DedupStateLost(str(error)) from None
        raise
