#!/usr/bin/env python3
"""Container health check: GET a path on the service's metrics port; exit 0 on HTTP 200.

Usage: streamclf-healthcheck [PATH]   (PATH defaults to /healthz)
The port is STREAMCLF_TRAINER_METRICS_PORT in a trainer container, else STREAMCLF_METRICS_PORT.
Standard library only, so the image needs no curl.
"""

import os
import sys
import urllib.request


def main() -> int:
    path = sys.argv[1] if len(sys.argv) > 1 else "/healthz"
    port = os.environ.get("STREAMCLF_TRAINER_METRICS_PORT") or os.environ.get(
        "STREAMCLF_METRICS_PORT"
    )
    if not port:
        print("no STREAMCLF_METRICS_PORT / STREAMCLF_TRAINER_METRICS_PORT set", file=sys.stderr)
        return 1
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=4) as resp:
            return 0 if resp.status == 200 else 1
    except OSError as exc:
        print(f"{path} on port {port}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
