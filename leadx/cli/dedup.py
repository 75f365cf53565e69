"""`leadx dedup rebuild`: restore the Redis dedup state from the SQL record ([dedup](../../docs/dedup.md))."""

from __future__ import annotations

import asyncio

from leadx.cli.database import sessions
from leadx.platform.config import HmacKeyring, env_str


def cmd_dedup_rebuild(args) -> int:
    import time

    from leadx.dedup.rebuild import rebuild
    from leadx.dedup.scopes import DedupPolicy
    from leadx.dedup.store import DEFAULT_BUCKET_BITS, DedupStore
    from leadx.platform.config import RedisSettings, env_bool, env_int
    from leadx.platform.redis.client import connect

    # The same settings the services read (docs/configuration.md), the broker's excepted.
    hmac_keys = HmacKeyring.from_env()
    redis_settings = RedisSettings.from_env()
    email_rules = env_bool("DEDUP_EMAIL_PROVIDER_RULES", True)
    factory = sessions()

    async def run() -> None:
        redis = connect(redis_settings)
        try:
            store = DedupStore(redis, env_str("LEADX_TOPIC_PREFIX", ""),
                               env_int("DEDUP_BUCKET_BITS", DEFAULT_BUCKET_BITS),
                               wait_replicas=redis_settings.wait_replicas,
                               wait_timeout_ms=redis_settings.wait_timeout_ms)
            # Under the rebuild lock, the flush too: a dedup service's own rebuild cannot interleave.
            report = await rebuild(factory, store, DedupPolicy.from_env(), hmac_keys,
                                   int(time.time() * 1000), email_rules, flush_first=args.flush)
        finally:
            await redis.aclose()
        if args.flush:
            print(f"flushed {report.flushed} dedup keys")
        print(f"dedup rebuilt: {report.leads} platform records, {report.postings} buyer records "
              f"({report.conflicts} refused as already held by another lead of the consumer)")

    asyncio.run(run())
    return 0


def add_commands(commands) -> None:
    dedup = commands.add_parser("dedup", help="duplicate protection").add_subparsers(dest="action", required=True)
    rebuild = dedup.add_parser("rebuild", help="restore the Redis dedup state from the SQL record")
    rebuild.add_argument("--flush", action="store_true", help="delete the current dedup keys first")
    rebuild.set_defaults(func=cmd_dedup_rebuild)
