"""`streamclf bench` starts `python -m benchmarks.run` as a program; the CLI never imports it."""

from __future__ import annotations

import subprocess
import sys

from tests.cli import ROOT, cli_env, streamclf


def test_the_cli_does_not_import_the_benchmarks() -> None:
    code = (
        "import sys, admin.cli; print(sorted(m for m in sys.modules if m.startswith('benchmarks')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_bench_passes_its_arguments_to_the_benchmark_program() -> None:
    proc = streamclf("bench", "--scenarios", "no-such-scenario")
    assert proc.returncode == 2  # argparse's usage error, from benchmarks.run itself
    assert "unknown scenarios ['no-such-scenario']" in proc.stderr
