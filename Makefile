# leadx — the two commands that matter: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# Python keeps the bytecode it compiles (in __pycache__, which git ignores) even where the environment
# sets PYTHONDONTWRITEBYTECODE, as these machines do: the suite and `leadx run` start hundreds of
# Python processes, and each compiled leadx's 250 modules (and the tests') from source again, 0.1 to
# 0.3 s of every service's start.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: install runtime-lock run test test-browser test-kafka faults unit integration kafka-jars proto proto-check lint typecheck k8s-check bench bench-intake bench-dedup bench-dedup-cluster bench-delivery bench-attempts bench-dashboard bench-portal bench-auction bench-scoring bench-ledger bench-hop bench-kafka bench-sustained bench-scaleout screenshots prior-model clean

install: $(STAMP)

# The virtual environment is rebuilt whenever the lock file or the project metadata changes.
$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "leadx needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

## Start the whole exchange locally (broker, Redis, SQLite, all services, demo seller and buyers).
## The broker: Apache Kafka where Java 17+ is present (leadx run fetches its jars the first time, as
## `make kafka-jars` does), tansu where it is not; `make run LEADX_BROKER=tansu` (or kafka) chooses.
LEADX_BROKER ?= auto
run: install
	$(VENV)/bin/leadx run --broker $(LEADX_BROKER)

## The whole suite, in four passes that each print their time: generated-code drift, lint, types,
## manifests, then the main suite (unit and integration tests), the browser tests, the Kafka pass and
## the fault pass. A test's marks choose its pass (pyproject.toml): the main suite runs every test
## not marked browser, kafka_only or fault. Two workers (pytest-xdist) on a two-core machine (CI's).
## Three were about 8% quicker, but the machine is then bound by CPU, and the buyers the tests serve
## from their own process missed the tests' 1-second auction windows in two CI runs in a row
## (README.md#tests). tests/conftest.py gives each worker whole groups of tests, in the order
## collected (the slow integration groups first), not xdist's default of the groups with most tests first.
MAIN_SUITE = not (browser or kafka_only or fault)
test: install proto-check lint typecheck k8s-check
	$(PY) -m pytest -n 2 --no-loadscope-reorder --ignore=tests/faults -m "$(MAIN_SUITE)"
	$(MAKE) test-browser
	$(MAKE) test-kafka
	$(MAKE) faults

## The web portal in a real browser (Chromium through Playwright), beside the shared exchange.
test-browser: install
	$(PY) -m pytest -m browser tests/integration

## The integration suite's core again, on one Apache Kafka broker with idempotent producers (the
## rest runs on tansu): the pipeline, crash recovery, the dedup races, the 120 s window, the
## auction's table recovery with two workers, and the bid feed's hand-overs; then the tests that
## need Apache Kafka itself (marked kafka_only): TLS and SCRAM, `leadx run --broker kafka`, idle fetches. Two
## runs, not one: most kafka_only modules start a Kafka of their own, and beside the core's
## head-started scenarios they would load the machine while those scenarios' auctions run. On Kafka
## the scenarios run one after another, in the order of these files (selected by a mark over
## tests/integration instead, they ran in file-name order, the 120 s window last, and the core took
## 293-301 s instead of 256 s).
KAFKA_CORE = tests/integration/test_pipeline.py tests/integration/test_crash_recovery.py \
	tests/integration/test_long_auction_window.py tests/integration/test_auction_workers.py \
	tests/integration/test_dedup_concurrency.py tests/integration/test_bid_feed.py
test-kafka: install kafka-jars
	LEADX_TEST_BROKER=kafka $(PY) -m pytest -n 2 --no-loadscope-reorder $(KAFKA_CORE)
	LEADX_TEST_BROKER=kafka $(PY) -m pytest -n 2 --no-loadscope-reorder -m kafka_only tests/integration

## The tests that freeze or kill a part of their own and wait out its timeouts (marked fault: a broker
## stopped past the producer's timeout, Redis restarted empty, a Redis primary killed, `leadx run`'s
## stalled broker and killed service), then the fault suite alone, on three Apache Kafka brokers of
## its own (it freezes and kills them, Redis and PostgreSQL, and reports its time and table in build/faults.md).
## (LEADX_FAULTS=postgresql make faults runs only the fault suite's faults so named, and not the first
## step; set it for `make faults` alone.)
faults: install kafka-jars
ifeq ($(strip $(LEADX_FAULTS)),)
	$(PY) -m pytest -n 2 --no-loadscope-reorder -m fault tests/integration
endif
	$(PY) -m pytest tests/faults

unit: install
	$(PY) -m pytest tests/unit

integration: install
	$(PY) -m pytest tests/integration

## Apache Kafka's jars (org.apache.kafka:kafka_2.13 and its dependencies, from Maven Central) for the
## local broker leadx.dev.kafka_broker starts; cached under ~/.cache/leadx (or $$XDG_CACHE_HOME/leadx).
kafka-jars: install
	$(PY) -m leadx.dev.kafka_broker fetch

## The production image's requirement set, derived from pyproject.toml and requirements.lock.
runtime-lock: install
	$(PY) -m leadx.dev.tools.runtime_lock

proto: install
	$(PY) -m leadx.dev.tools.gen_proto

proto-check: install
	$(PY) -m leadx.dev.tools.gen_proto --check

lint: install
	$(VENV)/bin/ruff check leadx services tests bench

typecheck: install
	$(VENV)/bin/mypy leadx services

k8s-check: install
	$(PY) -m leadx.dev.tools.check_k8s

bench: install
	$(PY) bench/pipeline.py
	$(PY) bench/intake.py
	$(PY) bench/dedup.py
	$(PY) bench/delivery.py
	$(PY) bench/attempts.py
	$(PY) bench/dashboard.py
	$(PY) bench/portal.py
	$(PY) bench/auction.py
	$(PY) bench/scoring.py
	$(PY) bench/ledger.py

bench-intake: install
	$(PY) bench/intake.py

bench-dedup: install
	$(PY) bench/dedup.py

## One Redis beside a three-primary Redis Cluster, 3 million identities each (bench/README.md).
bench-dedup-cluster: install
	$(PY) bench/dedup.py --cluster --identities 3000000 --checks 60000

bench-delivery: install
	$(PY) bench/delivery.py

## Delivery's dispute record, a sold lead's three statements on PostgreSQL: on the event loop's own
## connections beside the engine on a thread.
bench-attempts: install
	$(PY) bench/attempts.py

bench-dashboard: install
	$(PY) bench/dashboard.py

## The web portal's buyer home and lead search over 1,000,000 sales in PostgreSQL, beside the gRPC
## calls behind them (a private PostgreSQL unless LEADX_BENCH_POSTGRES_URL names one).
bench-portal: install
	$(PY) bench/portal.py

bench-auction: install
	$(PY) bench/auction.py

bench-scoring: install
	$(PY) bench/scoring.py

## The ledger's recorder alone: a sold lead's six events recorded in batches and one by one, SQLite
## and PostgreSQL.
bench-ledger: install
	$(PY) bench/ledger.py

## One hop of a lead (consume, publish, commit) at fixed rates: leadx's consumer and producer beside
## bare aiokafka and a bare wake-up, with the broker's CPU and the context switches per record, on
## tansu (bench/hop.py --broker kafka: on Apache Kafka).
bench-hop: install
	$(PY) bench/hop.py

## The whole exchange at fixed offered rates, sustained (60 s each), on SQLite then PostgreSQL: leads
## sold per second, latencies, the consumers' lag and the CPU per sold lead of every process; then each
## stage alone (short runs of the stage benches) and the whole's ratio to the slowest.
bench-sustained: install
	$(PY) bench/sustained.py

## Replicas of the bottleneck service (delivery), each under a CPU quota of its own (cgroups: needs
## root or a delegated cgroup; not in `make bench`): the sustained rate at 1, 2 and 4 replicas.
bench-scaleout: install
	$(PY) bench/scaleout.py

## The end-to-end figures on tansu and on one Apache Kafka broker, side by side, in one run.
bench-kafka: install kafka-jars
	$(PY) bench/pipeline.py --broker kafka

## The portal's main pages as docs/images/portal-*.png, from the exchange a running `make run` started
## (let it trade a minute first), in Debian's Chromium.
screenshots: install
	$(PY) -m leadx.dev.tools.portal_screenshots

## Retrain the prior model bundle shipped in leadx/scoring/prior from seeded simulated outcomes.
prior-model: install
	$(PY) -m leadx.dev.build_prior

clean:
	rm -rf $(VENV) .leadx .pytest_cache
