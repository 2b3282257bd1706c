"""OpenMP's wait policy and the model's speed on a shared CPU: `python -m benchmarks.omp_wait`.

Each (preset, policy) runs in a fresh process (the policy is read when torch loads), two
rounds interleaved, torch's default threads, length-sorted batches of 16 real sentences;
writes results/omp_wait_policy.json. The worker sets PASSIVE (see worker/__init__.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime

from benchmarks.common import RESULTS_DIR, machine_info

CHILD = """
import json, sys, time, torch
from benchmarks.common import ensure_model
from benchmarks.texts import sentences
from modelstore.loading import load_classifier
model, tok = load_classifier(ensure_model(sys.argv[1]))
texts = sorted(sentences(int(sys.argv[2]), 0)[0], key=len)
batches = [tok(texts[i:i + 16], padding=True, return_tensors="pt") for i in range(0, len(texts), 16)]
with torch.inference_mode():
    model(**batches[0])
    t = time.perf_counter()
    for b in batches:
        model(**b)
print(json.dumps({"texts_per_s": len(texts) / (time.perf_counter() - t), "threads": torch.get_num_threads()}))
"""
RUNS = (("tiny", 512), ("roberta-base", 64))


def measure(preset: str, n: int, policy: str) -> dict:
    env = {**os.environ, "OMP_WAIT_POLICY": policy}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, preset, str(n)], env=env, capture_output=True, text=True,
        check=True, timeout=900,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    started = time.perf_counter()
    rows = []
    for round_ in (1, 2):
        for preset, n in RUNS:
            for policy in ("ACTIVE", "PASSIVE"):
                got = measure(preset, n, policy)
                rows.append({"round": round_, "preset": preset, "policy": policy, "texts": n,
                             "load_avg_1m": os.getloadavg()[0], **got})  # fmt: skip
                print(rows[-1], flush=True)
    payload = {
        "created_at": datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"),
        "command": "python -m benchmarks.omp_wait",
        "machine": machine_info(),
        "rows": rows,
    }
    path = RESULTS_DIR / "omp_wait_policy.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {path} in {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()
