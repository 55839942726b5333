"""tools/bench_generator.py runs end to end on the CPU and prints the rows it promises."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

TOOL = Path(__file__).resolve().parents[1] / "tools" / "bench_generator.py"


def test_bench_generator_cpu_smoke(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("bench_generator", TOOL)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "r.json"
    argv = ["--device", "cpu", "--rows", "fp32,fp16,graphs,chosen", "--frames", "2",
            "--warmup", "1", "--parity-seeds", "1", "--json", str(out), "--upload", "64x32",
            "--backend", "trt", "--threads", "1"]  # fmt: skip
    assert bench.main(argv) == 0
    text = capsys.readouterr().out
    assert "| default | fp32 eager |" in text
    assert "| default | fp16 + CUDA graphs | n/a (no CUDA)" in text
    # each row names its engine; the chosen row says what was asked and what runs instead
    assert "| torch cpu fp32, 1 thread |" in text
    assert "torch cpu fp32 channels-last, 1 thread (asked trt cpu auto); backend trt needs" in text
    assert "| host copy (CPU frame) |" in text
    res = json.loads(out.read_text())
    row = res["rows"][0]
    assert row["status"] == "ok" and row["p50_ms"] > 0 and row["fps"] > 0
    assert res["parity"][0]["psnr_min"] > 40
    assert res["upload"][0]["status"] == "ok" and res["upload"][0]["used"] == "host"
    assert bench.main(["--rows", "fp64"]) == 2
