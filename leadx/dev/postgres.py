"""A private PostgreSQL cluster for the tests and benches: `initdb` into a folder of its own, started
with `pg_ctl` on a free loopback port, stopped and removed afterwards.

PostgreSQL refuses to run as root, and CI runs as root: there the cluster is made and run by the
`postgres` account that Debian's package creates, in a folder that account owns."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from leadx.dev.stack import free_port, wait_for_port


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries on this machine (Debian: `apt-get install postgresql`)."""


def server_binaries() -> Path:
    """The folder holding initdb and pg_ctl: on PATH, or the newest of Debian's versioned folders."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda path: int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0)
    if not candidates:
        raise PostgresUnavailable("no initdb found on PATH or under /usr/lib/postgresql/*/bin "
                                  "(Debian: apt-get install postgresql)")
    return Path(candidates[-1]).parent


@dataclass
class LocalPostgres:
    """One throwaway cluster with trust authentication on 127.0.0.1, database `test`."""

    port: int = field(default_factory=free_port)
    data_root: Path | None = None
    # True: flushed to disk at each commit, as in production (the benches that report SQL's cost).
    # False: fsync off, which the tests do not check, keeps a schema per test cheap.
    durable: bool = False
    _as_user: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/test"

    def start(self) -> str:
        binaries = server_binaries()
        self.data_root = Path(tempfile.mkdtemp(prefix="leadx-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.data_root, "postgres", "postgres")
            self._as_user = ["runuser", "-u", "postgres", "--"]
        data = self.data_root / "data"
        self._run([str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                   "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"])
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data_root} -c max_connections=300"
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run([str(binaries / "pg_ctl"), "-D", str(data), "-l", str(self.data_root / "server.log"),
                   "-o", options, "-w", "-t", "60", "start"])
        wait_for_port("127.0.0.1", self.port, 30)
        self._run([str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                   "test"])
        return self.url

    def processes(self) -> list[int]:
        """The server's processes: the postmaster and every backend and worker it started (freezing
        the postmaster alone would leave open connections served)."""
        if self.data_root is None:
            return []
        postmaster = int((self.data_root / "data" / "postmaster.pid").read_text().split()[0])
        children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True).stdout.split()
        return [postmaster, *map(int, children)]

    def restart(self) -> None:
        """A clean restart (`pg_ctl restart -m fast`, as a rolling upgrade does): every connection is
        closed, and the server is back on the same port with its data."""
        if self.data_root is None:
            raise RuntimeError("restart before start()")
        # Its log named again: without it the server would write to (and hold open) the pipes of
        # this call. The server's options are kept from its last start (postmaster.opts).
        self._run([str(server_binaries() / "pg_ctl"), "-D", str(self.data_root / "data"), "-l",
                   str(self.data_root / "server.log"), "-m", "fast", "-w", "-t", "60", "restart"])
        wait_for_port("127.0.0.1", self.port, 30)

    def stop(self) -> None:
        if self.data_root is None:
            return
        data = self.data_root / "data"
        if (data / "postmaster.pid").exists():
            binaries = server_binaries()
            subprocess.run([*self._as_user, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate",
                            "-w", "stop"], capture_output=True, timeout=60)
        for _ in range(3):
            try:
                shutil.rmtree(self.data_root)
                break
            except OSError:
                time.sleep(0.5)
        self.data_root = None

    def _run(self, argv: list[str]) -> None:
        result = subprocess.run([*self._as_user, *argv], capture_output=True, text=True, timeout=120,
                                cwd=self.data_root)
        if result.returncode != 0:
            log = self.data_root / "server.log" if self.data_root else None
            tail = log.read_text()[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"{Path(argv[0]).name} failed ({result.returncode}): "
                               f"{result.stderr.strip() or result.stdout.strip()}\n{tail}")
