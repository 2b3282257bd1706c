"""Processes the chaos run starts, kills and restarts: a private redis-server and workers.

The Redis here is always a private one on a free port (the shared 6379 one is never touched).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

STREAMCLF = str(Path(sys.executable).with_name("streamclf"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ChaosError(RuntimeError):
    """The chaos run could not set itself up or stop in time."""


class RedisServer:
    """A private redis-server (no persistence) that can be stopped and started again on the
    same port."""

    def __init__(self, work_dir: Path) -> None:
        self.port = free_port()
        self.work_dir = work_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> None:
        binary = shutil.which("redis-server")
        if not binary:
            raise ChaosError("redis-server is not installed (apt-get install redis-server)")
        argv = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        argv += ["--appendonly", "no", "--dir", str(self.work_dir)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        self.starts += 1
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise ChaosError(f"private redis-server on port {self.port} did not start")

    def stop(self) -> None:
        """Kill it (SIGKILL: as abrupt as a crash); what it held is gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None


@dataclass
class Worker:
    """One incarnation of a `streamclf worker` process, with its own metrics port."""

    worker_id: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    metrics_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    stopping: bool = False
    killed: bool = False

    def start(self) -> Worker:
        env = {**os.environ, **self.env, "STREAMCLF_METRICS_PORT": str(self.metrics_port)}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [*self.argv, "--worker-id", self.worker_id],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.started_at = time.monotonic()
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        self.killed = True
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def signal_stop(self) -> None:
        """One SIGTERM (a second one during its teardown would end it the hard way)."""
        if self.alive() and not self.stopping:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGTERM)
            self.stopping = True

    def terminate(self, timeout_s: float) -> int | None:
        """SIGTERM (once) and wait; the exit code, or None when it had to be killed."""
        if self.proc is None:
            return None
        self.signal_stop()
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def http(self, path: str) -> int:
        """HTTP status of GET `path` on the metrics port (0 when nothing answers)."""
        return self.get(path)[0]

    def get(self, path: str) -> tuple[int, str]:
        """(status, body) of GET `path` on the metrics port; (0, "") when nothing answers."""
        url = f"http://127.0.0.1:{self.metrics_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=3) as resp:
                return resp.status, resp.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")
        except OSError:
            return 0, ""

    def exited_on_its_own(self) -> bool:
        return self.proc is not None and not (self.alive() or self.killed or self.stopping)

    def last_line(self) -> str:
        lines = [line for line in self.log_tail().splitlines() if line.strip()]
        return lines[-1][:300] if lines else ""

    def log_tail(self, chars: int = 3000) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-chars:]


def worker_argv(bootstrap: str, store: Path, group: str, route: str) -> list[str]:
    return [STREAMCLF, "worker", "-b", bootstrap, "--store", str(store), "--group", group,
            "--route", route]  # fmt: skip


@dataclass
class Trainer:
    """A `streamclf trainer serve` process on the run's private jobs, feedback and results
    topics (it is sent poison on both topics it reads and must answer and outlive them)."""

    argv: list[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Trainer:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def terminate(self, timeout_s: float) -> int | None:
        """SIGTERM and wait; the exit code, or None when it had to be killed."""
        if self.proc is None:
            return None
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            return None
