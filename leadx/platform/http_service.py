"""Serving a service's HTTP app (the intake, the portal) the way every leadx service stops."""

from __future__ import annotations

import contextlib
import signal

import uvicorn
from starlette.types import ASGIApp

GRACEFUL_SHUTDOWN_S = 10  # requests in flight may finish this long after SIGTERM


class _DrainingServer(uvicorn.Server):
    """uvicorn re-raises SIGTERM after its graceful shutdown, so the process would end "killed by
    signal" even after a clean drain. Like the other services, an HTTP service drains and exits 0."""

    @contextlib.contextmanager
    def capture_signals(self):
        original = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


def serve(app: ASGIApp, port: int) -> None:
    """Serve `app` on every address at `port` until SIGTERM or SIGINT, then drain and return. Logs
    go through leadx's own logging (no uvicorn config, no access log: the app logs what matters)."""
    config = uvicorn.Config(app, host="0.0.0.0", port=port, log_config=None, access_log=False,
                            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S)
    _DrainingServer(config).run()
