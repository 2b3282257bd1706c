"""`make demo`: the whole loop on the embedded local stack, from a fresh checkout.

1. broker up; the `reviews` classifier trained by the trainer on the shipped ChnSentiCorp sample
   (first run; later runs copy the cached version);
2. a worker; reviews in, labelled events out, beside the human labels;
3. the trainer makes a second version, the gate compares it with the active one on the dev set;
4. the new version shadows the active one on live events (`models shadow` / `compare`);
5. it is swapped in while events stream, and every event comes out once (in = out);
6. `status`; everything down.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

from admin.context import console
from admin.demo import model as demo_model
from admin.demo.model import MODEL
from admin.demo.phases import run_phases
from admin.demo.session import Demo, start_worker, step
from admin.localstack import LocalBroker, StackError
from admin.safe_text import esc
from bus.control import ensure_control_topics
from bus.settings import KafkaSettings
from bus.topics import create_topics


def broker_up(state: Path) -> tuple[LocalBroker, bool]:
    broker = LocalBroker(state, port=int(os.environ.get("STREAMCLF_DEMO_PORT", "19092")))
    started_here = not broker.state().running
    broker.start()
    console.print(f"[green]broker[/] on {broker.address}")
    return broker, started_here


async def prepare(demo: Demo) -> None:
    await create_topics(demo.kafka, [demo.topic], partitions=2)
    await ensure_control_topics(demo.kafka, demo.control, demo.status)


def main() -> int:
    started = time.monotonic()
    state = Path(os.environ.get("STREAMCLF_STATE_DIR", ".streamclf")).resolve()
    try:
        broker, started_here = broker_up(state)
    except StackError as exc:
        console.print(f"[red]cannot start the broker: {esc(exc)}")
        return 3
    demo = Demo(KafkaSettings(bootstrap_servers=broker.address), state, uuid.uuid4().hex[:6])
    shutil.rmtree(demo.store.parent, ignore_errors=True)
    demo.store.parent.mkdir(parents=True)
    worker: subprocess.Popen[bytes] | None = None
    try:
        step("1. the classifier: trained on the shipped ChnSentiCorp sample")
        first = demo_model.first_version(demo.store, state / "demo-cache")
        demo.summary["first_version"] = first.__dict__
        how = "copied from the cache" if first.cached else f"trained in {first.seconds:.0f}s"
        console.print(f"{MODEL}@{first.version}: dev accuracy {first.dev_accuracy:.3f} ({how})")
        asyncio.run(prepare(demo))
        worker = start_worker(demo)
        code = run_phases(demo, worker)
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(60)
        if started_here:
            broker.stop()
            console.print("broker stopped")
    demo.summary |= {"seconds": round(time.monotonic() - started, 1), "exit_code": code}
    console.print(f"[bold]demo finished in {demo.summary['seconds']:.0f}s[/]")
    record(demo)
    return code


def record(demo: Demo) -> None:
    """Write the run's figures to `<state>/demo/last-run.json`; with STREAMCLF_DEMO_RECORD=FILE
    also append them to FILE (how benchmarks/results/demo.json was made)."""
    run = {
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "cpus": os.cpu_count(),
        "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        **demo.summary,
    }
    (demo.state / "demo" / "last-run.json").write_text(json.dumps(run, indent=2) + "\n")
    target = os.environ.get("STREAMCLF_DEMO_RECORD")
    if target:
        path = Path(target)
        runs = json.loads(path.read_text())["runs"] if path.is_file() else []
        payload = {"benchmark": "demo", "runs": [*runs, run]}
        path.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
