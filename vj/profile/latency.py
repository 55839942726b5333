"""Per-stage latency statistics from the clock's stage stamps, as a table or JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from vj.clock import STAGES, stage_latencies_ms
from vj.fsutil import atomic_write_bytes


def summarise(rows: np.ndarray) -> dict[str, dict[str, float]]:
    """rows [n, n_stages] ns → {stage: {p50, p95, mean, max, n}} in ms."""
    out: dict[str, dict[str, float]] = {}
    for name, ms in stage_latencies_ms(rows).items():
        if len(ms) == 0:
            continue
        out[name] = {
            "p50": float(np.percentile(ms, 50)),
            "p95": float(np.percentile(ms, 95)),
            "mean": float(ms.mean()),
            "max": float(ms.max()),
            "n": int(len(ms)),
        }
    return out


def format_table(summary: dict[str, dict[str, float]]) -> str:
    lines = [f"{'stage':<22} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} {'n':>6}"]
    for name, s in summary.items():
        p99 = s.get("p99", float("nan"))
        lines.append(
            f"{name:<22} {s['p50']:8.2f} {s['p95']:8.2f} {p99:8.2f} {s['max']:8.2f} {s['n']:6d}"
        )
    return "\n".join(lines)


def save_json(path: str | Path, rows: np.ndarray, extra: dict | None = None) -> None:
    """Raw stamps + summary, written atomically."""
    path = Path(path)
    doc = {
        "stages": list(STAGES),
        "stamps_ns": rows.tolist(),
        "summary": summarise(rows),
        **(extra or {}),
    }
    atomic_write_bytes(path, json.dumps(doc, indent=1).encode())
