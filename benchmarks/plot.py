"""A PNG beside the JSON: throughput per scenario row (log scale) and latency percentiles."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot(payload: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in payload["results"] if r.get("texts_per_s")]  # planned rows: no rate
    labels = [f"{r['scenario']}: {r['variant']} [{r['preset']}]" for r in rows]
    rates = [r["texts_per_s"] or 0 for r in rows]
    lat_rows = [r for r in rows if r.get("p50_ms") is not None]

    fig, (ax1, ax2) = plt.subplots(
        1, 2, figsize=(15, max(4.5, 0.42 * len(rows) + 1.5)), gridspec_kw={"width_ratios": [3, 2]}
    )
    colors = [f"C{sorted({r['scenario'] for r in rows}).index(r['scenario'])}" for r in rows]
    y = range(len(rows))
    ax1.barh(y, rates, color=colors)
    ax1.set_yticks(list(y), labels, fontsize=8)
    ax1.invert_yaxis()
    ax1.set_xscale("log")
    ax1.set_xlabel("texts/s or events/s (log)")
    ax1.set_title("Throughput")
    for i, v in enumerate(rates):
        if v:
            ax1.text(v, i, f" {v:,.0f}" if v >= 100 else f" {v:.1f}", va="center", fontsize=7)

    if lat_rows:
        ly = range(len(lat_rows))
        for k, (key, marker) in enumerate((("p50_ms", "o"), ("p95_ms", "s"), ("p99_ms", "^"))):
            ax2.scatter(
                [r[key] for r in lat_rows],
                [i + (k - 1) * 0.15 for i in ly],
                marker=marker,
                label=key[:3],
            )
        ax2.set_yticks(list(ly), [f"{r['scenario']}: {r['variant']}" for r in lat_rows], fontsize=8)
        ax2.invert_yaxis()
        ax2.set_xscale("log")
        ax2.set_xlabel("ms from produce to labelled event (log)")
        ax2.set_title("Latency")
        ax2.legend(fontsize=8)
    else:
        ax2.set_axis_off()
    machine = payload["machine"]
    fig.suptitle(
        f"streamclf bench {payload['created_at']} — {machine.get('gpu') or machine['cpu']}, "
        f"{machine['cpus_usable']} CPUs, torch {payload['versions']['torch']}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
