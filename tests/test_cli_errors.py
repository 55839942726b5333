"""Bad input on the command line: a clear one-line message and exit 2, never a traceback.

Each case runs `vj.cli.main` in its own process. Importing the CLI (torch) takes seconds on a
busy 2-core machine, so one runner process imports it once and forks a child per case: every
case still gets a fresh process with its own exit code and stderr.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

RUNNER = textwrap.dedent(
    """
    import json, os, signal, sys, time, traceback
    os.environ.pop("DISPLAY", None)
    os.environ.pop("WAYLAND_DISPLAY", None)
    from vj.cli import build_parser, main
    build_parser()  # imports every command module (torch ...) once, before the forks
    cases = json.loads(sys.argv[1])
    out = {}
    for name, case in cases.items():
        err = os.path.join(case["cwd"], name + ".stderr")
        pid = os.fork()
        if pid == 0:
            try:
                fd = os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
                os.dup2(fd, 1); os.dup2(fd, 2)
                os.chdir(case["cwd"])
                for mod in case.get("block", []):
                    sys.modules[mod] = None  # import fails as if not installed
                code = main(case["argv"])
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 1
            except BaseException:
                traceback.print_exc()
                code = 1
            sys.stdout.flush(); sys.stderr.flush()
            os._exit(code)
        deadline = time.monotonic() + case.get("timeout", 60)
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                rc = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL); os.waitpid(pid, 0)
                rc = "timeout"
                break
            time.sleep(0.05)
        out[name] = {"rc": rc, "stderr": open(err, errors="replace").read()}
    print(json.dumps(out))
    """
)


def _cases(tmp: Path) -> dict:
    (tmp / "deep.yaml").write_text("params: " + "[" * 50_000 + "]" * 50_000 + "\n")
    (tmp / "zero.yaml").symlink_to("/dev/zero")
    (tmp / "broken.yaml").write_text("params:\n  zooom: 1.0\n")
    (tmp / "nan.yaml").write_text("seed: 1\nparams:\n  zoom: .nan\n")
    (tmp / "huge.yaml").write_text("params:\n  zoom: 1.0e9\n")
    demo = ["demo", "--seconds", "1", "-o", str(tmp / "out.mp4"), "--no-progress"]
    c = {
        "preset_nosuch": (demo + ["--preset", "nosuch"], r"--preset nosuch: no preset named"),
        "fps_zero": (demo + ["--fps", "0"], r"argument --fps: 0 is out of range"),
        "output_unwritable": (  # /proc takes no new files, whoever runs the tests (root too)
            ["demo", "--seconds", "1", "-o", "/proc/vj-test.mp4", "--no-progress"],
            r"-o /proc/vj-test\.mp4: cannot write in /proc",
        ),
        "effect_nosuch": (demo + ["--effect", "nosuch"], r"--effect nosuch: no such effect"),
        "seconds_zero": (["demo", "--seconds", "0"], r"argument --seconds: 0 is out of range"),
        "live_no_display": (["live", "--demo"], r"cannot open the live window.*--headless"),
        "record_missing_dir": (
            ["live", "--demo", "--headless", "--record", str(tmp / "nodir" / "r.mp4")],
            r"--record .*r\.mp4: no such directory",
        ),
        "export_without_onnx": (
            ["export", "onnx", "default", str(tmp / "g.onnx"), "--size", "16"],
            r"onnx(script)? is not installed.*pip install -e \"\.\[export\]\"",
        ),
        "deep_yaml": (demo + ["--preset", "deep.yaml"], r"deep\.yaml:1: nested more than 64"),
        "dev_zero_yaml": (demo + ["--preset", "zero.yaml"], r"zero\.yaml: .*not a regular file"),
        # item 6: a broken preset in a batch render is an error, not the default preset's video
        "batch_broken_preset": (
            demo + ["--preset", "broken.yaml"],
            r"broken\.yaml:2: params\.zooom: unknown parameter 'zooom' \(did you mean 'zoom'\?\)",
        ),
        "nan_param": (demo + ["--preset", "nan.yaml"], r"nan\.yaml:3: params\.zoom: .*finite"),
        "huge_param": (
            demo + ["--preset", "huge.yaml"],
            r"huge\.yaml:2: params\.zoom: 1000000000\.0 out of range \[0\.5, 2\.0\]",
        ),
    }
    cases = {k: {"argv": v[0], "cwd": str(tmp)} for k, v in c.items()}
    cases["export_without_onnx"]["block"] = ["onnx", "onnxscript"]
    return cases, {k: v[1] for k, v in c.items()}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    cases, patterns = _cases(tmp)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, json.dumps(cases)],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), patterns


CASES = [
    "preset_nosuch", "fps_zero", "effect_nosuch", "seconds_zero", "live_no_display",
    "record_missing_dir", "export_without_onnx", "deep_yaml", "dev_zero_yaml",
    "batch_broken_preset", "nan_param", "huge_param", "output_unwritable",
]  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_bad_input_gives_a_message_and_exit_2(results, case):
    import re

    out, patterns = results
    r = out[case]
    assert "Traceback" not in r["stderr"], r["stderr"][-2000:]
    assert r["rc"] == 2, r
    assert re.search(patterns[case], r["stderr"]), r["stderr"]
