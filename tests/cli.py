"""Running the `streamclf` CLI as a real subprocess (this checkout's code, a fresh interpreter)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cli_env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "COLUMNS": "200", **extra}


def streamclf(*args: str, timeout_s: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    """`streamclf ARGS...`; returns the finished process with text stdout/stderr."""
    return subprocess.run(
        [sys.executable, "-m", "admin.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=cli_env(**env),
        cwd=ROOT,
    )


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    """The error a command printed: exactly one line on stderr, no traceback."""
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]
