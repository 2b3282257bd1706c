"""Sampling profiles of a process under test with py-spy (all threads, native frames off).

Writes `<stem>.txt` (the top functions by own and total time, from py-spy's raw output)
and `<stem>.svg` is not kept: the collapsed stacks are summarised instead, small enough to
commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
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
        keep = Path(os.environ.get("STREAMCLF_STATE_DIR", ".streamclf")) / "bench-logs"
        keep.mkdir(parents=True, exist_ok=True)
        raw.replace(keep / raw.name)  # the raw stacks (large) stay out of git
    else:
        stem.with_suffix(".txt").write_text(f"py-spy wrote nothing: {err.decode()[-2000:]}\n")


IDLE_FRAMES = (  # a thread parked here is waiting, not working
    ".select (selectors.py",
    "_worker (concurrent/futures/thread.py",
    "Condition.wait (threading.py",
    "_wait_for_tstate_lock",
)


def summarise(collapsed: str, top: int = TOP) -> str:
    """Per thread: share of samples busy (not parked in select/queue waits), then the top
    frames by own and inclusive samples among its busy samples."""
    per_thread: dict[str, list[tuple[list[str], int]]] = {}
    for line in collapsed.splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        frames = stack.split(";")
        per_thread.setdefault(frames[0], []).append((frames[1:], int(count_s)))
    lines = ["py-spy record --threads --idle --nonblocking; % of that thread's samples", ""]
    for thread, stacks in sorted(per_thread.items(), key=lambda kv: -sum(c for _, c in kv[1])):
        samples = sum(c for _, c in stacks)
        busy = [(f, c) for f, c in stacks if f and not any(i in f[-1] for i in IDLE_FRAMES)]
        busy_n = sum(c for _, c in busy)
        lines.append(f"== {thread}: {samples} samples, busy {busy_n / samples:.1%}")
        if not busy_n:
            lines.append("")
            continue
        own: Counter[str] = Counter()
        total: Counter[str] = Counter()
        for frames, count in busy:
            own[frames[-1]] += count
            for frame in set(frames):
                total[frame] += count
        lines.append(f"  top {top} by own time:")
        lines += [f"    {n / samples:6.1%}  {f}" for f, n in own.most_common(top)]
        lines.append(f"  top {top // 2} by inclusive time:")
        lines += [f"    {n / samples:6.1%}  {f}" for f, n in total.most_common(top // 2)]
        lines.append("")
    return "\n".join(lines) + "\n"
