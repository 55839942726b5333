"""A glfw window under Xvfb shows the compositor's pixels (read from Xvfb's framebuffer file).

The window runs in a subprocess so its context never shares a process with this one's EGL
contexts; the pixels are read from Xvfb's `-fbdir` XWD file, independent of GL.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from vj.render.compositor import Compositor
from vj.render.offscreen import OffscreenTarget, create_headless_context
from vj.render.window import display_available

pytestmark = pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb not installed")


@pytest.fixture(scope="module")
def xvfb(tmp_path_factory):
    fbdir = tmp_path_factory.mktemp("xvfb")
    r, w = os.pipe()
    proc = subprocess.Popen(
        [
            "Xvfb",
            "-displayfd",
            str(w),
            "-screen",
            "0",
            "1280x720x24",
            "-fbdir",
            str(fbdir),
            "-nolisten",
            "tcp",
        ],
        pass_fds=(w,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    os.close(w)
    buf = b""
    with os.fdopen(r, "rb") as f:
        while not buf.endswith(b"\n"):
            ch = f.read(1)
            if not ch:
                break
            buf += ch
    if not buf.strip():
        proc.kill()
        pytest.fail(f"Xvfb did not start: {proc.stderr.read().decode(errors='replace')}")
    num = buf.strip().decode()
    # the server must still be up and listening when the child connects (a loaded CI machine
    # once gave "Failed to open display" here): wait for its socket, say why if it went away
    sock = Path(f"/tmp/.X11-unix/X{num}")
    t_end = time.monotonic() + 10.0
    while not sock.exists() and proc.poll() is None and time.monotonic() < t_end:
        time.sleep(0.05)
    if proc.poll() is not None or not sock.exists():
        proc.kill()
        pytest.fail(f"Xvfb :{num} is not listening: {proc.stderr.read().decode(errors='replace')}")
    try:
        yield f":{num}", fbdir / "Xvfb_screen0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def read_xwd(path) -> np.ndarray:
    """Xvfb's screen as [H, W, 3] uint8 (XWD, 32 bits per pixel, TrueColor)."""
    raw = path.read_bytes()
    hdr = struct.unpack(">25I", raw[:100])
    header_size, width, height = hdr[0], hdr[4], hdr[5]
    byte_order, bpp, bpl = hdr[7], hdr[11], hdr[12]
    masks, ncolors = hdr[14:17], hdr[19]
    assert bpp == 32, f"unexpected XWD depth {bpp}"
    start = header_size + ncolors * 12
    px = np.frombuffer(
        raw, "<u4" if byte_order == 0 else ">u4", count=height * bpl // 4, offset=start
    ).reshape(height, bpl // 4)[:, :width]
    out = np.empty((height, width, 3), np.uint8)
    for i, m in enumerate(masks):
        shift = (m & -m).bit_length() - 1
        out[..., i] = (px & m) >> shift
    return out


def window_frame():
    f = np.zeros((90, 160, 4), np.uint8)
    f[..., 3] = 255
    f[:45, :80] = (255, 0, 0, 255)
    f[45:, 80:] = (0, 0, 255, 255)
    f[20:70, 60:100, 1] = 200
    return f


CHILD = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    import numpy as np
    sys.path.insert(0, {root!r})
    from tests.test_render_window import read_xwd, window_frame
    from vj.render.compositor import Compositor
    from vj.render.window import Window, WindowError, display_available
    import glfw
    # a loaded machine has given "Failed to open display" right after the server's socket
    # appeared: wait (≤ 10 s) until a client can connect, then test the product's own calls
    t_end = time.monotonic() + 10.0
    while not glfw.init() and time.monotonic() < t_end:
        time.sleep(0.2)
    glfw.terminate()
    report = {{"available": display_available()}}
    try:
        Window(320, 180, monitor="no-such-monitor")
    except WindowError as exc:
        report["bad_monitor"] = str(exc)
    keys = []
    with Window(320, 180, vsync=False, title="vj test") as win:
        win.on_key = lambda k, a, m: keys.append((k, a, m))
        report["size"] = list(win.size)
        report["pos"] = list(glfw.get_window_pos(win._win))
        comp = Compositor(win.ctx, *win.size, effect="none")
        comp.submit_frame(window_frame(), 0, 0)
        for _ in range(3):
            win.poll()
            comp.draw(win.fbo, 0, {{"hud": 1.0}}, hud_lines=["vj 60 fps"])
            report["t_swap"] = win.swap()
        win.ctx.finish()
        time.sleep(0.3)
        np.save({shot!r}, read_xwd(Path({fb!r})))
        win._key(None, 65, 0, 1, 0)
        report["keys"] = keys
        report["context_api"] = win.context_api
        resized = []
        win.on_resize = lambda w, h: resized.append([w, h])
        win.set_fullscreen(True)
        for _ in range(20):
            win.poll()
            if resized:
                break
            time.sleep(0.05)
        win.set_fullscreen(False)
        for _ in range(20):
            win.poll()
            if len(resized) > 1:
                break
            time.sleep(0.05)
        report["resized"] = resized
    with Window(fullscreen=True, monitor=0, vsync=True) as fs:
        report["fullscreen_size"] = list(fs.size)
    print(json.dumps(report))
    """
)


def test_window_shows_compositor_pixels(xvfb, tmp_path):
    display, fbfile = xvfb
    shot = tmp_path / "screen.npy"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "DISPLAY": display}
    env.pop("WAYLAND_DISPLAY", None)
    script = CHILD.format(root=root, shot=str(shot), fb=str(fbfile))
    r = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, timeout=120, cwd=root
    )
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-3000:]
    report = json.loads(r.stdout.decode().strip().splitlines()[-1])
    assert report["available"] is None
    assert "no monitor matches 'no-such-monitor'" in report["bad_monitor"]
    assert report["size"] == [320, 180]
    assert report["fullscreen_size"] == [1280, 720]
    assert report["keys"] == [[65, 1, 0]]
    assert report["context_api"] == "egl"
    assert report["resized"] == [[1280, 720], [320, 180]]

    # the same calls on a headless EGL target give the reference pixels
    ctx = create_headless_context()
    comp = Compositor(ctx, 320, 180, effect="none")
    comp.submit_frame(window_frame(), 0, 0)
    tgt = OffscreenTarget(ctx, 320, 180)
    comp.draw(tgt.fbo, 0, {"hud": 1.0}, hud_lines=["vj 60 fps"])
    ref = tgt.read_rgb().copy()
    ctx.release()

    screen = np.load(shot)
    x, y = report["pos"]
    shown = screen[y : y + 180, x : x + 320]
    assert np.abs(shown.astype(int) - ref).max() <= 1
    assert (shown[10, 300] == (0, 0, 0)).all() and shown[170, 300, 2] > 200  # not a blank screen


def test_no_display_reason(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    if sys.platform.startswith("linux"):
        assert "DISPLAY" in display_available()
