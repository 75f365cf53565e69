"""`leadx run`: the whole exchange on this machine, with a demo seller and buyers."""

from __future__ import annotations

import sys
from pathlib import Path


def cmd_run(args) -> int:
    import secrets

    from leadx.dev.demo.exchange import BrokerUnavailable, run_exchange

    seed = secrets.randbits(32) if args.seed is None else args.seed
    try:
        return run_exchange(args.leads, args.rate, args.window, seed, Path(args.run_dir), args.broker)
    except BrokerUnavailable as error:
        print(f"leadx: --broker kafka: {error}", file=sys.stderr)
        return 1


def add_commands(commands) -> None:
    run = commands.add_parser("run", help="run the whole exchange locally with a demo seller and buyers")
    run.add_argument("--leads", type=int, default=None, help="stop after this many leads (default: Ctrl-C)")
    run.add_argument("--rate", type=float, default=1.0, help="demo leads per second")
    run.add_argument("--window", type=float, default=3.0, help="auction window in seconds")
    run.add_argument("--seed", type=int, default=None, help="seed for the simulated consumers")
    run.add_argument("--run-dir", default=".leadx", help="where logs, the SQLite file and Kafka's data go")
    run.add_argument("--broker", choices=("auto", "kafka", "tansu"), default="auto",
                     help="the local broker when KAFKA_BOOTSTRAP_SERVERS names none: Apache Kafka (needs Java 17+;"
                          " its jars are fetched from Maven Central the first time) or tansu (memory only; Kafka"
                          " tools such as kcat cannot talk to it); auto: Kafka where Java is present (default)")
    run.set_defaults(func=cmd_run)
