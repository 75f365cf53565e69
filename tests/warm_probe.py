"""A stand-in service for tests/integration/test_warm_start.py: run as `python -m tests.warm_probe`,
it writes what it found about its process as one JSON line to stdout, then does what PROBE_THEN says:
`exit:<code>`, `raise`, or `wait` (for a signal; SIGTERM ends it with code 0 when PROBE_ON_TERM=exit)."""

from __future__ import annotations

import gc
import json
import os
import signal
import sys
import time


def facts() -> dict:
    return {
        "name": __name__,
        "argv0": os.path.basename(sys.argv[0]),
        "cwd": os.getcwd(),
        "env": {key: os.environ.get(key) for key in ("PROBE_VALUE", "PROBE_UNSET", "PYTHONUNBUFFERED")},
        "own_session": os.getsid(0) == os.getpid(),
        "stdin": sys.stdin.read(),
        "gc_enabled": gc.isenabled(),
        "leadx_modules": sorted(name for name in sys.modules if name.startswith("leadx.")),
        "threads": len(os.listdir("/proc/self/task")),
    }


def main() -> None:
    print(json.dumps(facts()), flush=True)
    then = os.environ.get("PROBE_THEN", "exit:0")
    if then.startswith("exit:"):
        raise SystemExit(int(then.split(":")[1]))
    if then == "raise":
        raise RuntimeError("the probe failed as asked")
    if os.environ.get("PROBE_ON_TERM") == "exit":
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("waiting", flush=True)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main()
