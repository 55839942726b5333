"""The profile report: report.json (everything) and a self-contained report.html (matplotlib
plots embedded as base64 PNG), a printed summary, and the side-by-side comparison of two runs."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import numpy as np

from vj.fsutil import atomic_write_bytes

TIMELINE_S = 3.0  # seconds of timeline plotted


class ReportError(ValueError):
    """A report file that cannot be read (missing, not JSON, not a vj profile)."""


def _plt():
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only, never a window
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            f'the HTML report needs matplotlib ({exc}); pip install -e ".[profile]"'
        ) from exc
    return plt


def load_report(path: str | Path) -> dict:
    p = Path(path)
    try:
        if p.stat().st_size > 256 * 1024 * 1024:
            raise ReportError(f"{p}: larger than 256 MB, not a vj profile report")
        doc = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportError(f"{p}: cannot read the report: {exc}") from exc
    if not isinstance(doc, dict) or "summary" not in doc or "settings" not in doc:
        raise ReportError(f"{p}: not a vj profile report (no summary/settings)")
    return doc


def write_report(doc: dict, out_dir: Path, compare: dict | None = None) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    js, page = out_dir / "report.json", out_dir / "report.html"
    atomic_write_bytes(js, json.dumps(doc, indent=1).encode())
    atomic_write_bytes(page, render_html(doc, compare).encode())
    return js, page


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    _plt().close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _stage_names(doc: dict) -> list[str]:
    return [k for k in doc["summary"] if k != "total"] + ["total"]


def figure_histograms(doc: dict):
    from vj.clock import stage_latencies_ms

    plt = _plt()
    rows = np.asarray(doc["stamps_ns"], np.int64).reshape(-1, len(doc["stages"]))
    rows = rows[np.all(rows > 0, axis=1)]
    lat = stage_latencies_ms(rows)
    names = list(lat)
    fig, axes = plt.subplots(2, (len(names) + 1) // 2, figsize=(14, 5))
    for ax, name in zip(axes.flat, names, strict=False):
        v = lat[name]
        if len(v):
            ax.hist(v, bins=40, color="tab:red" if name == "total" else "tab:blue")
            ax.axvline(np.percentile(v, 95), color="k", ls="--", lw=0.8)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("ms", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    fig.suptitle("per-stage latency (dashed: p95)")
    fig.tight_layout()
    return fig


def figure_timeline(doc: dict):
    plt = _plt()
    tl = doc["timeline"]
    hits = np.asarray(tl["hits_ns"], np.int64)
    presents = np.asarray(tl["presents_ns"], np.int64)
    t_mid = (
        hits[len(hits) // 2]
        if len(hits)
        else (presents[len(presents) // 2] if len(presents) else 0)
    )
    a, b = t_mid - int(0.5e9), t_mid + int((TIMELINE_S - 0.5) * 1e9)

    def sec(t):
        return (np.asarray(t, np.int64) - a) / 1e9

    def window(t):
        t = np.asarray(t, np.int64)
        return t[(t >= a) & (t <= b)]

    fig, ax = plt.subplots(figsize=(14, 3.6))
    ax.vlines(sec(window(tl["audio_blocks_ns"])), 4.6, 5.0, color="0.6", lw=0.4)
    ax.vlines(sec(window(hits)), 0, 5.4, color="tab:red", lw=1.5, label="audio hit")
    ax.vlines(
        sec(window(tl["onsets_ns"])), 3.6, 4.4, color="tab:orange", lw=2, label="onset published"
    )
    stamps = np.asarray(doc["stamps_ns"], np.int64).reshape(-1, len(doc["stages"]))
    i0, i1 = doc["stages"].index("gen_start"), doc["stages"].index("gen_end")
    bars = [
        (sec(s[i0]), (s[i1] - s[i0]) / 1e9) for s in stamps if s[i0] and s[i1] and a <= s[i0] <= b
    ]
    shades = ["tab:green", "yellowgreen"] * (len(bars) // 2 + 1)  # alternate: frames visible
    ax.broken_barh(bars, (2.6, 0.8), facecolors=shades[: len(bars)], label="generator frame")
    ax.vlines(sec(window(presents)), 1.6, 2.4, color="tab:blue", lw=0.8, label="present")
    ax.set_yticks([4.8, 4.0, 3.0, 2.0], ["audio blocks", "onsets", "generator", "presents"])
    ax.set_xlim(0, TIMELINE_S)
    ax.set_xlabel("s")
    ax.legend(loc="upper right", fontsize=7, ncol=4)
    ax.set_title(f"timeline ({TIMELINE_S:g} s around a hit)")
    fig.tight_layout()
    return fig


def figure_frame_times(doc: dict):
    plt = _plt()
    dt = np.asarray(doc["frame_times_ms"])
    period = 1e3 / doc["settings"]["display_fps"]
    fig, ax = plt.subplots(figsize=(14, 3))
    ax.plot(dt, lw=0.7, color="tab:blue", label="display frame time")
    miss = np.nonzero(dt > 1.5 * period)[0]
    ax.plot(miss, dt[miss], "x", color="tab:red", ms=4, label=f"missed ({len(miss)})")
    ax.axhline(period, color="k", ls="--", lw=0.8, label=f"{period:.1f} ms period")
    ax.set_xlabel("present #")
    ax.set_ylabel("ms")
    ax.legend(fontsize=7)
    ax.set_title("frame times and dropped display frames")
    fig.tight_layout()
    return fig


def figure_probe(doc: dict):
    plt = _plt()
    rows = doc["probe"]["hits"]
    fig, ax = plt.subplots(figsize=(7, 3))
    x = np.arange(len(rows))
    ax.plot(x, [r["probe_ms"] for r in rows], "o-", label="probe (pixels)")
    ax.plot(
        x,
        [np.nan if r["stamp_ms"] is None else r["stamp_ms"] for r in rows],
        "x--",
        label="stamps",
    )
    ax.set_xlabel("hit #")
    ax.set_ylabel("audio hit → present, ms")
    ax.legend(fontsize=7)
    ax.set_title("end to end, per hit")
    fig.tight_layout()
    return fig


def figure_compare(a: dict, b: dict, label_a: str, label_b: str):
    plt = _plt()
    names = [n for n in _stage_names(b) if n in a["summary"]]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(12, 3.6))
    for off, doc, lab in ((-0.2, a, label_a), (0.2, b, label_b)):
        p50 = [doc["summary"][n]["p50"] for n in names]
        p95 = [doc["summary"][n]["p95"] for n in names]
        ax.bar(x + off, p95, 0.4, alpha=0.35, label=f"{lab} p95")
        ax.bar(x + off, p50, 0.4, label=f"{lab} p50")
    ax.set_xticks(x, names, rotation=20, fontsize=8)
    ax.set_ylabel("ms")
    ax.legend(fontsize=7)
    ax.set_title("per-stage latency, side by side")
    fig.tight_layout()
    return fig


def summary_text(doc: dict) -> str:
    from vj.profile.latency import format_table

    f, p, s = doc["frames"], doc["probe"], doc["settings"]
    lines = [
        f"profile: {s['stimulus']} via {s['audio_path']}, {s['size'][0]}x{s['size'][1]} at "
        f"{s['display_fps']:g} fps, backend {s['backend']} on {s['device']}",
        format_table(doc["summary"]),
        f"generator {f['generator_fps']:.1f} fps, display {f['display_fps']:.1f} fps; "
        f"{f['generator_frames_never_shown']} generator frames never shown, "
        f"{f['display_repeats']} display repeats, {f['display_deadline_misses']} deadline misses",
        f"audio overruns: device {doc['audio']['overruns']['device']}, "
        f"analysis {doc['audio']['overruns']['analysis']}",
    ]
    lines.append(probe_line(p))
    return "\n".join(lines)


def probe_line(p: dict) -> str:
    if not p["probe_ms"]:
        return "end to end: no audio hits measured (the probe needs --stimulus clicks)"
    pm, sm = p["probe_ms"], p["stamp_ms"] or {"p50": float("nan"), "p95": float("nan")}
    verdict = (
        "agree within one frame"
        if p["agree_within_one_frame"]
        else f"DISAGREE by up to {p['max_disagreement_ms']:.1f} ms (> one frame, "
        f"{p['one_frame_ms']:.1f} ms): a stamp is not where the picture is"
    )
    return (
        f"audio hit → present: probe (pixels) p50 {pm['p50']:.1f} ms p95 {pm['p95']:.1f} ms | "
        f"stamps p50 {sm['p50']:.1f} ms p95 {sm['p95']:.1f} ms over {pm['n']} hits: {verdict}"
    )


def compare_text(a: dict, b: dict, label_a: str = "A", label_b: str = "B") -> str:
    lines = [f"{'stage':<22} {label_a + ' p50':>10} {label_b + ' p50':>10} {'ratio':>7} "
             f"{label_a + ' p95':>10} {label_b + ' p95':>10}"]  # fmt: skip
    for n in _stage_names(b):
        if n not in a["summary"]:
            continue
        sa, sb = a["summary"][n], b["summary"][n]
        r = sb["p50"] / sa["p50"] if sa["p50"] else float("nan")
        lines.append(
            f"{n:<22} {sa['p50']:10.2f} {sb['p50']:10.2f} {r:7.2f} {sa['p95']:10.2f} "
            f"{sb['p95']:10.2f}"
        )
    for key in ("generator_fps", "display_fps", "display_deadline_misses"):
        va, vb = a["frames"][key], b["frames"][key]
        lines.append(f"{key:<22} {va:10.1f} {vb:10.1f}")
    pa, pb = a["probe"]["probe_ms"], b["probe"]["probe_ms"]
    if pa and pb:
        lines.append(f"{'hit→present (probe)':<22} {pa['p50']:10.1f} {pb['p50']:10.1f}")
    return "\n".join(lines)


def _table(rows: list[list[str]]) -> str:
    out = ["<table>"]
    for i, r in enumerate(rows):
        tag = "th" if i == 0 else "td"
        out.append("<tr>" + "".join(f"<{tag}>{html.escape(str(c))}</{tag}>" for c in r) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def render_html(doc: dict, compare: dict | None = None) -> str:
    s, f, m = doc["settings"], doc["frames"], doc["machine"]
    stage_rows = [["stage", "p50 ms", "p95 ms", "p99 ms", "max ms", "n"]] + [
        [n, f"{v['p50']:.2f}", f"{v['p95']:.2f}", f"{v.get('p99', float('nan')):.2f}",
         f"{v['max']:.2f}", v["n"]]
        for n, v in doc["summary"].items()
    ]  # fmt: skip
    figs = [
        ("Per-stage latency", figure_histograms(doc)),
        ("Timeline", figure_timeline(doc)),
        ("Frame times", figure_frame_times(doc)),
    ]
    if doc["probe"]["hits"]:
        figs.append(("End to end: probe vs stamps", figure_probe(doc)))
    if compare is not None:
        figs.append(("Comparison", figure_compare(compare, doc, "A", "this run")))
    imgs = "\n".join(
        f'<h2>{html.escape(t)}</h2>\n<img alt="{html.escape(t)}" '
        f'src="data:image/png;base64,{_png(fig)}">'
        for t, fig in figs
    )
    settings = [["setting", "value"]] + [[k, v] for k, v in s.items() if k != "options"]
    machine = [["machine", ""]] + [[k, v] for k, v in m.items()]
    frames = [["frames", ""]] + [
        [k, f"{v:.2f}" if isinstance(v, float) else v] for k, v in f.items()
    ]
    ov = doc["audio"]["overruns"]
    cb = ov.get("callback", {})
    audio = (
        [["audio", ""], ["blocks", doc["audio"]["blocks"]]]
        + [[k, ov[k]] for k in ("device", "analysis", "late_callbacks") if k in ov]
        + [
            [f"callback {k}", f"{v:.0f}"]
            for k, v in cb.items()
            if k.startswith(("dur", "interval"))
        ]
    )
    cmp_block = ""
    if compare is not None:
        text = html.escape(compare_text(compare, doc, "A", "B"))
        cmp_block = f"<h2>Compared with A (B = this run)</h2><pre>{text}</pre>"
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>vj profile {html.escape(doc["created"])}</title>
<style>body{{font-family:sans-serif;max-width:1300px;margin:1em auto}}
table{{border-collapse:collapse;margin:0.5em 0}}td,th{{border:1px solid #ccc;padding:2px 8px;
font-size:13px;text-align:right}}img{{max-width:100%}}pre{{background:#f4f4f4;padding:8px}}</style>
</head><body>
<h1>vj profile</h1>
<p>{html.escape(doc["created"])} — {html.escape(s["stimulus"])} through the
<b>{html.escape(s["audio_path"])}</b> audio path</p>
<pre>{html.escape(probe_line(doc["probe"]))}</pre>
<div style="display:flex;gap:2em;flex-wrap:wrap">{_table(stage_rows)}{_table(frames)}
{_table(audio)}{_table(settings)}{_table(machine)}</div>
{cmp_block}
{imgs}
</body></html>
"""
