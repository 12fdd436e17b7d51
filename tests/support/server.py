"""Run a real `sessionbase serve` in a subprocess on a free loopback port, and other commands
in processes of their own, for tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import IO, Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_command(
    data_dir: Path,
    codex_home: Path,
    *args: str,
    prefix: tuple[str, ...] = (),
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """`sessionbase --data-dir D --codex-home H <args>` in its own process, its output
    captured (raises TimeoutExpired should it hang). ``prefix`` as for ``ServerProcess``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONBASE_")}
    return subprocess.run(
        [*prefix, sys.executable, "-c", "from sessionbase.cli import main; main()",
         "--data-dir", str(data_dir), "--codex-home", str(codex_home), *args],
        capture_output=True, text=True, timeout=timeout, env=env, check=False,
    )  # fmt: skip


class ServerProcess:
    """`sessionbase --data-dir D --codex-home H serve --port P`, ready when /readyz says so.

    ``restart()`` stops and starts it again on the same port (for reconnect tests). The log
    is kept in ``log_path`` for failure messages. ``prefix`` runs the command under another
    (``setpriv`` to drop capabilities, say). With ``pipe_log`` the server writes its log to a
    pipe, which this process copies to ``log_path``: a file-size limit on the server then
    cannot stop its logging.
    """

    def __init__(
        self,
        data_dir: Path,
        codex_home: Path,
        *,
        port: int | None = None,
        extra: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        prefix: tuple[str, ...] = (),
        pipe_log: bool = False,
    ) -> None:
        self.data_dir = data_dir
        self.codex_home = codex_home
        self.port = port or free_port()
        self.extra = extra
        self.env = env or {}
        self.prefix = prefix
        self.pipe_log = pipe_log
        self._copier: threading.Thread | None = None
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = data_dir.parent / f"server-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> ServerProcess:
        self.launch()
        return self.wait_ready(timeout)

    def launch(self) -> None:
        """Start the process without waiting for it to be ready."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONBASE_")}
        env["SESSIONBASE_RESCAN_INTERVAL"] = "5"
        env.update(self.env)
        log = open(self.log_path, "ab")  # handed to the child, or fed from its pipe
        self.proc = subprocess.Popen(
            [*self.prefix, sys.executable, "-c", "from sessionbase.cli import main; main()",
             "--data-dir", str(self.data_dir), "--codex-home", str(self.codex_home),
             "serve", "--port", str(self.port), *self.extra],
            stdout=subprocess.PIPE if self.pipe_log else log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        if self.pipe_log:
            assert self.proc.stdout is not None
            self._copier = threading.Thread(target=_copy, args=(self.proc.stdout, log))
            self._copier.start()
        else:
            log.close()

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/readyz", timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def wait_ready(self, timeout: float = 30.0) -> ServerProcess:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            if self.ready():
                return self
            time.sleep(0.05)
        raise RuntimeError(f"server not ready after {timeout} s:\n{self.log()}")

    def wait_semantic(self, timeout: float = 60.0) -> None:
        """Wait until /readyz says the background embedder has caught up."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=1) as response:
                    if json.loads(response.read()).get("semantic"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"semantic search not ready after {timeout} s:\n{self.log()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._copier is not None:
            self._copier.join()
            self._copier = None
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def query(self, path: str, args: dict[str, Any] | None = None) -> Any:
        """Run a query once over the plain JSON API."""
        request = urllib.request.Request(
            f"{self.url}/v1/query/{path}",
            data=json.dumps(args or {}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def readyz(self) -> tuple[int, Any]:
        """The status code and body of ``/readyz``."""
        try:
            with urllib.request.urlopen(f"{self.url}/readyz", timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _copy(source: IO[bytes], log: IO[bytes]) -> None:
    with source, log:
        for line in source:
            log.write(line)
            log.flush()
