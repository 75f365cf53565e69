"""`leadx simulate` and `leadx scoring train|evaluate|show`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from leadx.dev.simulation.days import DEFAULT_START, day_start_ms
from leadx.platform.config import ConfigError


def _start_ms(text: str) -> int:
    try:
        return day_start_ms(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


def _simulated(count: int, seed: int, start_ms: int, days: float, label: str):
    from leadx.dev.simulation.market import simulate
    from leadx.dev.simulation.progress import Progress

    progress = Progress(count, label)
    leads = []
    for lead in simulate(count, seed, start_ms, days):
        leads.append(lead)
        progress.advance()
    progress.finish()
    return leads


def cmd_simulate(args) -> int:
    from leadx.dev.simulation.market import simulate
    from leadx.dev.simulation.progress import Progress

    out = sys.stdout if args.out == "-" else open(args.out, "w", encoding="utf-8")  # noqa: SIM115
    progress = Progress(args.leads, "simulating")
    counts = {"leads": 0, "contacted": 0, "converted": 0, "returned": 0, "answered_direct_offer": 0}
    try:
        for lead in simulate(args.leads, args.seed, args.start, args.days):
            out.write(json.dumps(lead.record(), separators=(",", ":")) + "\n")
            counts["leads"] += 1
            for outcome in ("contacted", "converted", "returned"):
                counts[outcome] += getattr(lead.outcome, outcome)
            counts["answered_direct_offer"] += lead.answered_direct_offer
            progress.advance()
    finally:
        progress.finish()
        if out is not sys.stdout:
            out.close()
    print(json.dumps(counts), file=sys.stderr)
    return 0


def _registry(args) -> Path:
    from leadx.platform.config import env_str

    if args.models:
        return Path(args.models)
    try:
        return Path(env_str("SCORING_MODELS"))
    except ConfigError:
        raise SystemExit("say where the models live: --models DIR or SCORING_MODELS") from None


def _current(registry: Path):
    from leadx.scoring.registry import current

    return current(registry)


def _read_simulated_file(path: str) -> list[dict]:
    """`leadx simulate`'s lines; a line that is not one is a clear error with its number."""
    records = []
    try:
        with open(path, encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    if not isinstance(record["lead"], dict) or "contact_ms" not in record["outcome"] \
                            or "created_ms" not in record:
                        raise KeyError("a field training reads")
                except (ValueError, KeyError, TypeError):
                    raise SystemExit(f"leadx: {path}, line {number}: not a line of `leadx simulate`") from None
                records.append(record)
    except OSError as error:
        raise SystemExit(f"leadx: cannot read {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise SystemExit(f"leadx: {path} is not UTF-8 text") from None
    return records


def _training_data(args):
    if args.from_file:
        from leadx.dev.simulation.training import training_data_from_records

        return training_data_from_records(_read_simulated_file(args.from_file), f"file {Path(args.from_file).name}")
    if args.from_db:
        from leadx.scoring.recorded import training_data_from_db

        return training_data_from_db(args.since, args.until)
    from leadx.dev.simulation.training import training_data

    leads = _simulated(args.simulated, args.seed, args.start, args.days, "simulating")
    return training_data(leads, f"simulated {args.simulated} leads, seed {args.seed}")


def cmd_scoring_train(args) -> int:
    from leadx.scoring.models import train

    registry = _registry(args)
    try:
        data = _training_data(args)
    except ValueError as error:  # too few outcomes to learn from
        print(f"leadx: {error}", file=sys.stderr)
        return 2
    previous = _current(registry)
    bundle = train(data, seed=args.seed, previous=previous)
    where = bundle.save(registry)
    print(json.dumps({"version": bundle.version, "saved": str(where), "previous": previous.version,
                      "data": bundle.meta["data"], "held_out_metrics": bundle.meta["held_out_metrics"]}, indent=2))
    return 0


def cmd_scoring_evaluate(args) -> int:
    from leadx.dev.simulation.evaluation import evaluate, plot_reliability, report

    bundle = _current(Path(args.models)) if args.models else _current_from_env()
    leads = _simulated(args.leads, args.seed, args.start, args.days, "simulating held-out leads")
    results = evaluate(bundle, leads, args.seed)
    print(report(results))
    if args.png:
        plot_reliability(results, Path(args.png))
        print(f"reliability diagram: {args.png}")
    if args.json:
        Path(args.json).write_text(json.dumps({k: v for k, v in results.items() if not k.startswith("_")},
                                              indent=2) + "\n")
    return 0


def _current_from_env():
    from leadx.scoring.registry import configured

    return configured()


def cmd_scoring_show(args) -> int:
    bundle = _current(Path(args.models)) if args.models else _current_from_env()
    print(json.dumps(bundle.meta, indent=2))
    return 0


def add_commands(commands) -> None:
    simulate = commands.add_parser("simulate", help="simulate a lead market: consumers, sellers, buyers and "
                                                    "outcomes, one JSON line per lead")
    simulate.add_argument("--leads", type=_positive, default=10_000)
    simulate.add_argument("--seed", type=int, default=1)
    simulate.add_argument("--start", type=_start_ms, default=_start_ms(DEFAULT_START), help="first day, YYYY-MM-DD")
    simulate.add_argument("--days", type=float, default=30.0, help="days the leads arrive over")
    simulate.add_argument("--out", default="-", help="a file, or - for standard output")
    simulate.set_defaults(func=cmd_simulate)

    scoring = commands.add_parser("scoring", help="response-probability models and clusters") \
        .add_subparsers(dest="action", required=True)
    train = scoring.add_parser("train", help="train a new model bundle and make it the current one")
    source = train.add_mutually_exclusive_group(required=True)
    source.add_argument("--from-db", action="store_true", help="the outcomes buyers reported (DATABASE_URL)")
    source.add_argument("--from-file", help="a file written by `leadx simulate`")
    source.add_argument("--simulated", type=_positive, help="this many freshly simulated leads")
    train.add_argument("--since", type=_start_ms, help="with --from-db: leads sold on or after this day")
    train.add_argument("--until", type=_start_ms, help="with --from-db: leads sold before this day")
    train.add_argument("--models", help="the model registry folder (default: SCORING_MODELS)")
    train.add_argument("--seed", type=int, default=1)
    train.add_argument("--start", type=_start_ms, default=_start_ms(DEFAULT_START))
    train.add_argument("--days", type=float, default=30.0)
    train.set_defaults(func=cmd_scoring_train)

    evaluate = scoring.add_parser("evaluate", help="AUC, Brier score and calibration error on held-out "
                                                   "simulated leads, beside the oracle")
    evaluate.add_argument("--models", help="the model registry folder (default: SCORING_MODELS, else the prior)")
    evaluate.add_argument("--leads", type=_positive, default=50_000)
    evaluate.add_argument("--seed", type=int, default=1001, help="not a seed the model was trained on")
    evaluate.add_argument("--start", type=_start_ms, default=_start_ms("2026-03-01"))
    evaluate.add_argument("--days", type=float, default=30.0)
    evaluate.add_argument("--png", default="reliability.png", help="where to draw the reliability diagram")
    evaluate.add_argument("--json", help="also write the figures to this file")
    evaluate.set_defaults(func=cmd_scoring_evaluate)

    show = scoring.add_parser("show", help="the current bundle's version, training data, metrics and clusters")
    show.add_argument("--models", help="the model registry folder (default: SCORING_MODELS, else the prior)")
    show.set_defaults(func=cmd_scoring_show)
