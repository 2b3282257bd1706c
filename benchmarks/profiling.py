"""Sampling profiles of a process under test with py-spy (all threads, native frames off).

Writes `<stem>.txt` (the top functions by own and total time, from py-spy's raw output)
and `<stem>.svg` is not kept: the collapsed stacks are summarised instead, small enough to
commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

TOP = 40


def py_spy() -> str | None:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


@contextlib.asynccontextmanager
async def profile_process(pid: int, stem: Path, rate_hz: int = 50) -> AsyncIterator[None]:
    """Sample `pid` while the body runs; then summarise the stacks into `<stem>.txt`."""
    binary = py_spy()
    if binary is None:
        stem.with_suffix(".txt").write_text("py-spy not installed (pip install py-spy)\n")
        yield
        return
    raw = stem.with_suffix(".collapsed")
    proc = await asyncio.create_subprocess_exec(
        binary, "record", "--pid", str(pid), "--format", "raw", "--output", str(raw),
        "--rate", str(rate_hz), "--nonblocking", "--threads", "--idle",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        await asyncio.sleep(1.0)
        yield
    finally:
        proc.send_signal(2)  # SIGINT: py-spy writes its output and exits
        _, err = await proc.communicate()
    if raw.exists():
        stem.with_suffix(".txt").write_text(summarise(raw.read_text()))
        raw.unlink()
    else:
        stem.with_suffix(".txt").write_text(f"py-spy wrote nothing: {err.decode()[-2000:]}\n")


def summarise(collapsed: str, top: int = TOP) -> str:
    """Top frames by own samples and by total (inclusive) samples, per thread group."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    samples = 0
    for line in collapsed.splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        count = int(count_s)
        samples += count
        frames = stack.split(";")
        threads[frames[0]] += count
        own[frames[-1]] += count
        for frame in set(frames[1:]):
            total[frame] += count
    lines = [f"py-spy samples: {samples}", "", "samples by thread:"]
    lines += [f"  {n / samples:6.1%}  {t}" for t, n in threads.most_common()]
    lines += ["", f"top {top} by own time (% of all samples, idle included):"]
    lines += [f"  {n / samples:6.1%}  {f}" for f, n in own.most_common(top)]
    lines += ["", f"top {top} by total time:"]
    lines += [f"  {n / samples:6.1%}  {f}" for f, n in total.most_common(top)]
    return "\n".join(lines) + "\n"
