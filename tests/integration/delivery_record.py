"""Keep figures measured by integration tests (printed, and saved for the closing note).

Only counts a test observed go in here; each entry says when and from which test it came.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "integration.json"


def record(name: str, figures: dict[str, Any]) -> None:
    entry = {**figures, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    print(f"\n{name}: {json.dumps(entry)}")
    try:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        data[name] = entry
        RESULTS.write_text(json.dumps(data, indent=2) + "\n")
    except OSError:
        pass  # a read-only checkout still runs the tests
