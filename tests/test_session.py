"""Session directory: written incrementally and crash-safely, read back exactly; events replayed
at their audio times; `vj live --record-session` + `vj render --session` end to end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.gan_nets import tiny_generator
from vj.show.frame import ControlEvent
from vj.show.session import SessionError, SessionWriter, read_session

SR = 48000
REPO = Path(__file__).resolve().parents[1]
T0 = 5_000_000_000_000


def _feed(w: SessionWriter, seconds: float, block: int = 256) -> np.ndarray:
    n = int(seconds * SR / block)
    rng = np.random.default_rng(0)
    x = rng.uniform(-0.5, 0.5, (n * block, 2)).astype(np.float32)
    for k in range(n):
        t_end = T0 + int(((k + 1) * block - 1) * 1e9 / SR)
        w.push_audio(x[k * block : (k + 1) * block], t_end)
    return x


def test_round_trip_audio_events_meta(tmp_path):
    w = SessionWriter(
        tmp_path / "s", SR, 2, {"seed": 7, "checkpoint": "default"}, trigger_names={"tap"}
    )
    x = _feed(w, 2.0)
    w.event(ControlEvent(T0 + 500_000_000, "midi", "fx_amount", 0.75))
    w.on_param("tap", 3.0, "key")  # a trigger is logged as one press
    w.event(ControlEvent(T0 + 1_500_000_000, "osc", "preset", "club"))
    w.close()
    s = read_session(tmp_path / "s")
    assert np.array_equal(s.audio, x)  # bit-exact float32
    assert s.meta["seed"] == 7 and s.meta["closed"] and s.meta["samples"] == len(x)
    assert s.meta["t0_ns"] == T0
    names = [e.name for e in s.events]
    assert {"fx_amount", "tap", "preset"} == set(names)
    assert [e.value for e in s.events if e.name == "tap"] == [1.0]
    assert [e.value for e in s.events if e.name == "preset"] == ["club"]
    # the event's audio time comes from the clock anchors
    t_fx = dict((e.name, t) for t, e in s.event_times_s())["fx_amount"]
    assert abs(t_fx - 0.5) < 1e-3
    # for the Show's offline driver: ns from the first sample, one sample on (see the docs)
    off = [e for e in s.offline_events() if e.name != "tap"]  # (the tap: the real clock's)
    assert [e.name for e in off] == ["fx_amount", "preset"]
    assert abs(off[0].t_ns - (500_000_000 + 1e9 / SR)) < 2
    assert abs(off[1].t_ns - (1_500_000_000 + 1e9 / SR)) < 2 and off[1].value == "club"


def test_crash_leaves_a_readable_session(tmp_path):
    """A writer killed (SIGKILL) mid-session: audio up to the last sync and every complete
    event line survive; a line cut mid-write is dropped, not an error."""
    code = f"""
import sys, time, numpy as np
sys.path.insert(0, {str(REPO)!r})
from vj.show.session import SessionWriter
from vj.show.frame import ControlEvent
w = SessionWriter({str(tmp_path / "c")!r}, {SR}, 1)
x = np.full((256, 1), 0.25, np.float32)
t = {T0}
for k in range(10**9):
    t += int(256e9 / {SR})
    w.push_audio(x, t)
    if k % 50 == 0:
        w.event(ControlEvent(t, "midi", "fx_amount", 0.5))
    if k == 600:
        print("ready", flush=True)
    time.sleep(256 / {SR})
"""
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    time.sleep(1.5)
    p.send_signal(signal.SIGKILL)
    p.wait()
    with open(tmp_path / "c" / "events.jsonl", "a") as f:
        f.write('{"t_ns": 12, "sou')  # as if the crash cut a line
    s = read_session(tmp_path / "c")
    assert s.meta.get("closed") is None
    assert len(s.audio) >= 2 * SR  # 600 blocks were in before "ready"; ≤ 1 s lost
    assert np.all(s.audio == 0.25)
    assert len(s.events) >= 10 and all(e.name == "fx_amount" for e in s.events)


def test_bad_sessions_are_clear_errors(tmp_path):
    with pytest.raises(SessionError, match="no meta.json"):
        read_session(tmp_path)
    w = SessionWriter(tmp_path / "b", SR, 1)
    _feed(w, 0.1)
    w.close()
    ev = tmp_path / "b" / "events.jsonl"
    ev.write_text('{"t_ns": 1, "name": "x", "value": 1}\n{"t_ns": -3, "name": "y"}\n\n')
    with pytest.raises(SessionError, match=r"events.jsonl:2: bad event"):
        read_session(tmp_path / "b")
    (tmp_path / "b" / "meta.json").write_text('{"version": 99}')
    with pytest.raises(SessionError, match="not a version 1"):
        read_session(tmp_path / "b")
    with pytest.raises(SessionError, match="not an empty directory"):
        SessionWriter(tmp_path / "b", SR, 1)


@pytest.mark.slow
def test_live_session_then_offline_rerender(tmp_path):
    from vj.gan.checkpoint import save_generator

    ckpt = tmp_path / "tiny.safetensors"
    save_generator(
        tiny_generator(
            0, z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3,
            mapping_kwargs=dict(num_layers=2), channel_base=128, channel_max=16,
        ),
        ckpt,
    )  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(REPO))
    sess = tmp_path / "sess"
    live = subprocess.Popen(
        [sys.executable, "-m", "vj", "live", "--demo", "--headless", "--size", "64x64",
         "--checkpoint", str(ckpt), "--no-midi", "--osc-port", "0", "--duration", "4",
         "--record-session", str(sess), "--seed", "3"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    log, _ = live.communicate(timeout=240)
    assert live.returncode == 0, log
    assert "session saved" in log
    s = read_session(sess)
    assert s.meta["seed"] == 3 and s.meta["checkpoint"] == str(ckpt)
    assert s.meta["checkpoint_sha256"] and (sess / "preset.yaml").is_file()
    assert 2.5 * SR < len(s.audio) < 6 * SR and np.abs(s.audio).max() > 0.01
    # a controller move, appended as the live writer would have logged it
    with open(sess / "events.jsonl", "a") as f:
        t = s.meta["t0_ns"] + 1_000_000_000
        f.write(json.dumps({"t_ns": t, "source": "midi", "name": "zoom", "value": 1.5}) + "\n")
    out = tmp_path / "re.mp4"
    r = subprocess.run(
        [sys.executable, "-m", "vj", "render", "--session", str(sess), "--size", "32x32",
         "--fps", "10", "--no-progress", "-o", str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "replayed 1 control events through the Show" in r.stdout, r.stdout
    import av

    with av.open(str(out)) as c:
        assert len(c.streams.audio) == 1
        v = c.streams.video[0]
        assert (v.codec_context.width, v.codec_context.height) == (32, 32)
        n = sum(1 for _ in c.decode(v))
    assert abs(n - len(s.audio) / SR * 10) <= 1
    r = subprocess.run(
        [sys.executable, "-m", "vj", "render", "--session", str(tmp_path), "-o", str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 2 and "not a vj session" in r.stderr and "Traceback" not in r.stderr
