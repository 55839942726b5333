"""Spout and Syphon outputs. Neither runs on Linux: the missing-platform / missing-package lines
go through the real CLI; the senders' logic is tested through a real Stage (EGL readback →
FrameSender thread) with small stand-ins for SpoutGL and syphon put in sys.modules."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import numpy as np
import pytest

from vj.render import outputs
from vj.render.compositor import Compositor
from vj.render.offscreen import create_headless_context
from vj.render.outputs import available, open_output, texshare
from vj.render.stage import Stage, StageOptions

ROOT = Path(__file__).resolve().parents[1]
GL_RGBA = 0x1908
W, H = 48, 27


@pytest.fixture(scope="module")
def ctx():
    c = create_headless_context()
    yield c
    c.release()


def _fake_spoutgl(log: list, refuse: list) -> dict[str, types.ModuleType]:
    """SpoutGL's Python surface as vj uses it; every call logged with the calling thread."""

    class SpoutSender:
        def __init__(self):
            log.append(("new", threading.get_ident()))

        def createOpenGL(self):
            log.append(("createOpenGL", threading.get_ident()))
            return True

        def setSenderName(self, name):
            log.append(("setSenderName", threading.get_ident(), name))

        def sendImage(self, buf, width, height, gl_format, invert, host_fbo):
            a = np.asarray(buf)
            assert a.flags.c_contiguous and a.nbytes >= width * height * 4
            log.append(
                ("sendImage", threading.get_ident(), a.copy(), width, height, gl_format, invert,
                 host_fbo)
            )  # fmt: skip
            return not (refuse and refuse.pop())

        def setFrameSync(self, name):
            log.append(("setFrameSync", threading.get_ident(), name))

        def releaseSender(self):
            log.append(("releaseSender", threading.get_ident()))

        def closeOpenGL(self):
            log.append(("closeOpenGL", threading.get_ident()))
            return True

    mod = types.ModuleType("SpoutGL")
    enums = types.ModuleType("SpoutGL.enums")
    enums.GL_RGBA = GL_RGBA
    mod.SpoutSender, mod.enums = SpoutSender, enums
    return {"SpoutGL": mod, "SpoutGL.enums": enums}


def _fake_syphon(log: list) -> dict[str, types.ModuleType]:
    class Texture:
        def __init__(self, w, h):
            self.w, self.h, self.data = w, h, None

    class SyphonMetalServer:
        def __init__(self, name):
            self.device = "metal-device"
            log.append(("server", threading.get_ident(), name))

        def publish_frame_texture(self, texture, is_flipped=False):
            log.append(("publish", threading.get_ident(), texture.data.copy(), is_flipped))

        def stop(self):
            log.append(("stop", threading.get_ident()))

    def create_mtl_texture(device, width, height):
        log.append(("texture", threading.get_ident(), device, width, height))
        return Texture(width, height)

    def copy_image_to_mtl_texture(image, texture):
        assert image.shape == (texture.h, texture.w, 4) and image.dtype == np.uint8
        texture.data = np.frombuffer(image.tobytes(), np.uint8).reshape(image.shape)

    mod = types.ModuleType("syphon")
    utils = types.ModuleType("syphon.utils")
    num = types.ModuleType("syphon.utils.numpy")
    raw = types.ModuleType("syphon.utils.raw")
    mod.SyphonMetalServer, mod.utils = SyphonMetalServer, utils
    utils.numpy, utils.raw = num, raw
    num.copy_image_to_mtl_texture = copy_image_to_mtl_texture
    raw.create_mtl_texture = create_mtl_texture
    return {
        "syphon": mod, "syphon.utils": utils, "syphon.utils.numpy": num, "syphon.utils.raw": raw
    }  # fmt: skip


def _picture() -> np.ndarray:
    """[H, W, 4] top row first: a ramp down the rows, so a flipped frame is told apart."""
    img = np.zeros((H, W, 4), np.uint8)
    img[..., 0] = np.linspace(0, 255, H, dtype=np.uint8)[:, None]
    img[..., 1] = np.linspace(0, 255, W, dtype=np.uint8)[None, :]
    img[..., 3] = 255
    return img


def _run_stage(ctx, kind: str, log: list, want) -> np.ndarray:
    """Draw the picture through a real Stage with output `kind` until `want(log)`; returns
    what the master output holds, top row first."""
    comp = Compositor(ctx, W, H, effect="none", filter="bilinear", fit="stretch")
    stage = Stage(ctx, comp, StageOptions(output=(W, H), outputs=(kind,), name="vj-test"))
    assert stage.warnings == [] and [s.kind for s in stage.senders] == [kind]
    pic = _picture()
    deadline = time.monotonic() + 30  # a loaded machine
    i = 0
    while not want(log) and time.monotonic() < deadline:
        comp.submit_frame(pic, i, i * 10_000_000)  # a generator frame: top row first
        comp.draw(stage.fbo, i * 10_000_000, {"hud": 0.0, "fx_amount": 0.0, "fx_pulse": 0.0})
        stage.finish_frame(None)
        i += 1
        time.sleep(0.01)
    shown = np.frombuffer(stage.fbo.read(components=4, alignment=1), np.uint8)
    shown = shown.reshape(H, W, 4)[::-1].copy()
    stage.release()  # closes the sender: on its own thread for these sinks
    comp.release()
    return shown


def test_spout_sender_gets_rgba_frames_off_the_render_thread(ctx, monkeypatch):
    log: list = []
    for name, mod in _fake_spoutgl(log, []).items():
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.setattr(texshare, "_platform", lambda: "win32")
    assert available("spout") is None
    shown = _run_stage(ctx, "spout", log, lambda lg: sum(e[0] == "sendImage" for e in lg) >= 3)

    render = threading.get_ident()
    sends = [e for e in log if e[0] == "sendImage"]
    assert len(sends) >= 3, log
    sender_threads = {e[1] for e in log}
    assert len(sender_threads) == 1 and render not in sender_threads  # all of it on one thread
    _, _, img, w, h, fmt, invert, fbo = sends[-1]
    assert (w, h, fmt, invert, fbo) == (W, H, GL_RGBA, False, 0)
    assert img.shape == (H, W, 4) and np.array_equal(img, shown)  # top row first, as shown
    assert np.abs(img[..., :3].astype(int) - _picture()[..., :3]).max() <= 2
    names = [e[0] for e in log]
    assert names[:3] == ["new", "createOpenGL", "setSenderName"] and log[2][2] == "vj-test"
    assert names.count("setFrameSync") == len(sends)
    assert names[-2:] == ["releaseSender", "closeOpenGL"]


def test_spout_refusal_is_reported_and_the_sender_reopened(monkeypatch):
    log: list = []
    refuse = [True]
    for name, mod in _fake_spoutgl(log, refuse).items():
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.setattr(texshare, "_platform", lambda: "win32")
    out = open_output("spout", "vj", 8, 4, 30)
    out._retry_s = 0.05
    out.submit(np.zeros((4, 8, 4), np.uint8))
    deadline = time.monotonic() + 20
    while out.error is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert out.error == "output spout failed: Spout sender refused the frame"
    while out.sent == 0 and time.monotonic() < deadline:
        out.submit(np.zeros((4, 8, 4), np.uint8))
        time.sleep(0.02)
    out.close()
    assert out.sent >= 1 and out.error is None
    assert [e[0] for e in log].count("new") == 2  # the refused sender released, a new one made


def test_syphon_server_publishes_each_frame_off_the_render_thread(ctx, monkeypatch):
    log: list = []
    for name, mod in _fake_syphon(log).items():
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.setattr(texshare, "_platform", lambda: "darwin")
    assert available("syphon") is None
    shown = _run_stage(ctx, "syphon", log, lambda lg: sum(e[0] == "publish" for e in lg) >= 3)

    assert {e[1] for e in log} != {threading.get_ident()}
    assert len({e[1] for e in log}) == 1  # server, texture, publish and stop: one thread
    assert log[0][:1] + log[0][2:] == ("server", "vj-test")
    assert log[1][2:] == ("metal-device", W, H)  # one texture at the output size
    pubs = [e for e in log if e[0] == "publish"]
    assert np.array_equal(pubs[-1][2], shown) and pubs[-1][3] is False
    assert log[-1][0] == "stop"


def test_missing_package_is_one_line_naming_the_extra(monkeypatch):
    for kind, module, extra in (("spout", "SpoutGL", "spout"), ("syphon", "syphon", "syphon")):
        monkeypatch.setitem(sys.modules, module, None)  # `import` raises ImportError
        monkeypatch.setattr(texshare, "_platform", lambda k=kind: texshare._INFO[k][0])
        why = available(kind)
        assert why.startswith(f"{kind} output needs ") and f'pip install -e ".[{extra}]"' in why
        assert "\n" not in why
        with pytest.raises(outputs.OutputUnavailable, match=r"\.\[" + extra):
            open_output(kind, "vj", 8, 4, 30)


def _live(args: list[str], prelude: str = "") -> subprocess.CompletedProcess:
    code = f"import sys\n{prelude}\nfrom vj.cli import main\nraise SystemExit(main(sys.argv[1:]))"
    return subprocess.run(
        ["xvfb-run", "-a", "-s", "-screen 0 640x480x24", sys.executable, "-c", code, *args],
        capture_output=True, text=True, timeout=240, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip


LIVE = ["live", "--no-midi", "--osc-port", "0", "--demo", "--duration", "1.5", "--size",
        "160x90"]  # fmt: skip


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="Xvfb not installed")
def test_vj_live_send_spout_and_syphon_on_linux_says_so_and_plays_on():
    r = _live([*LIVE, "--send", "spout", "--send", "syphon"])
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    lines = r.stderr.splitlines()
    assert lines.count("vj: spout output exists only on Windows (this is linux); use ndi") == 1
    assert lines.count("vj: syphon output exists only on macOS (this is linux); use ndi") == 1


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="Xvfb not installed")
def test_vj_live_send_spout_on_windows_without_spoutgl_names_the_extra():
    """The CLI as it runs on Windows without the package: only the platform is stood in."""
    prelude = (
        "import vj.render.outputs.texshare as t\nt._platform = lambda: 'win32'\n"
        "sys.modules['SpoutGL'] = None"
    )
    r = _live([*LIVE, "--send", "spout"], prelude)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    (line,) = [ln for ln in r.stderr.splitlines() if "spout" in ln]
    assert line.startswith("vj: spout output needs SpoutGL (")
    assert line.endswith('pip install -e ".[spout]"')


def test_vj_devices_lists_each_output_and_why_not():
    r = subprocess.run(
        [sys.executable, "-m", "vj", "devices"], capture_output=True, text=True, timeout=120,
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    out = r.stdout.split("Outputs (--send, stage.outputs):\n", 1)[1].splitlines()
    rows = dict(line.strip().split(": ", 1) for line in out if line.startswith("  "))
    assert set(rows) == set(outputs.KINDS)
    for kind in outputs.KINDS:
        assert rows[kind] == (available(kind) or "available")
    if sys.platform.startswith("linux"):
        assert "only on Windows" in rows["spout"] and "only on macOS" in rows["syphon"]
