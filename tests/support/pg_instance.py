"""A private PostgreSQL server for fault tests: restarted, frozen and stopped at will.

The shared server on 127.0.0.1:5432 serves everyone on the machine and CI, so tests never
touch it. This one lives in a temporary directory with its own port and socket directory, runs
as the ``postgres`` system user (PostgreSQL refuses to run as root; ``setpriv`` switches user
without forking, so the process started is the postmaster itself), trusts local connections,
and is removed at the end.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psutil
import psycopg

from tests.support.server import free_port

BIN = Path("/usr/lib/postgresql/15/bin")
USER = "postgres"


def unavailable_reason() -> str | None:
    if not (BIN / "initdb").exists():
        return f"{BIN}/initdb is missing (Debian's postgresql-15)"
    try:
        pwd.getpwnam(USER)
    except KeyError:
        return f"there is no {USER} user to run a private PostgreSQL as"
    if shutil.which("setpriv") is None:
        return "setpriv (util-linux) is missing"
    return None


class PrivatePostgres:
    """``initdb`` once, then ``start``/``restart``/``freeze``/``thaw``/``stop``."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="sessionbase-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.log_path = self.root / "postgres.log"
        entry = pwd.getpwnam(USER)
        os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._as_user = ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}",
                         "--init-groups"]  # fmt: skip
        subprocess.run(
            [*self._as_user, str(BIN / "initdb"), "-D", str(self.data), "-U", "postgres",
             "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"],
            check=True, capture_output=True, cwd=self.root,
        )  # fmt: skip
        self.proc: subprocess.Popen[bytes] | None = None
        self._frozen: list[psutil.Process] = []

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [*self._as_user, str(BIN / "postgres"), "-D", str(self.data), "-p", str(self.port),
             "-k", str(self.root), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
             "-c", "full_page_writes=off"],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.root,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(self.url, connect_timeout=1) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.Error:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"private PostgreSQL did not start:\n{self.log()}") from None
                time.sleep(0.1)

    def stop(self) -> None:
        """Fast shutdown: sessions are cut, nothing committed is lost."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def _processes(self) -> list[psutil.Process]:
        assert self.proc is not None
        main = psutil.Process(self.proc.pid)
        return [main, *main.children(recursive=True)]

    def freeze(self) -> None:
        """SIGSTOP the postmaster and every backend: the server hangs, connections stay."""
        self._frozen = self._processes()
        self._signal(self._frozen, signal.SIGSTOP)

    def thaw(self) -> None:
        self._signal(self._frozen or self._processes(), signal.SIGCONT)
        self._frozen = []

    @staticmethod
    def _signal(processes: list[psutil.Process], signum: int) -> None:
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):  # a worker that just ended
                process.send_signal(signum)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.thaw()
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
