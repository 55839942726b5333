"""End to end on real components: clicks played through JACK into the running app move the frames.

A JACK-Client plays a click track into the app's sounddevice input on the dummy server; the app
runs its real threads (audio → analysis → modulation → generator → EGL compositor) headless.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from tests.jackutil import JackPlayer

pytestmark = [pytest.mark.jack, pytest.mark.slow]

CLICK_EVERY_S = 0.75
N_CLICKS = 8


def _click_track(sr: int) -> np.ndarray:
    n = int(sr * (1.0 + N_CLICKS * CLICK_EVERY_S + 1.0))
    x = np.zeros(n, np.float32)
    burst = int(0.01 * sr)
    env = np.exp(-np.arange(burst) / (0.002 * sr)).astype(np.float32)
    rng = np.random.default_rng(0)
    for i in range(N_CLICKS):
        s = int(sr * (1.0 + i * CLICK_EVERY_S))
        x[s : s + burst] = 0.8 * env * rng.uniform(-1, 1, burst).astype(np.float32)
    return x


def test_clicks_through_jack_change_frames(jack_session):
    from vj.audio.source import LiveSource
    from vj.audio.stream import FeatureExtractor
    from vj.live import AudioInput, LiveApp, LiveOptions
    from vj.params import default_registry
    from vj.tempo import TapTempo, TempoArbiter

    sr = 48000
    registry = default_registry()
    registry.set("drift", 0.0)
    tap = TapTempo()
    arbiter = TempoArbiter([tap])
    extractor = FeatureExtractor(sr, hop=256, arbiter=arbiter)
    frames: list = []
    opts = LiveOptions(
        width=256,
        height=144,
        fps=30,
        headless=True,
        duration=None,
        gen_threads=1,
        # a copy: the GenFrame's picture is the engine's ring buffer, reused a few ticks on
        on_frame=lambda f: frames.append((f.features.onset_count, np.array(f.rgba))),
    )
    source = AudioInput(
        lambda on_block: LiveSource(on_block, sample_rate=sr, block_size=256), extractor
    )
    app = LiveApp(registry, source, opts, tap=tap, arbiter=arbiter)

    player = JackPlayer(_click_track(sr), sample_rate=sr)
    runner = threading.Thread(target=app.run, daemon=True)
    runner.start()
    try:
        for _ in range(50):  # wait for PortAudio's JACK ports to appear
            if player.connect_to_app():
                break
            threading.Event().wait(0.1)
        else:
            pytest.fail("the app's JACK input ports never appeared")
        threading.Event().wait(0.5)
        player.play()
        assert player.done.wait(20), "click track did not finish playing"
        threading.Event().wait(0.5)
    finally:
        app.stop()
        runner.join(15)
        player.close()

    counts = np.array([c for c, _ in frames])
    assert counts[-1] == N_CLICKS, f"expected {N_CLICKS} onsets, the app saw {counts[-1]}"
    imgs = np.stack([np.asarray(f, np.float32) for _, f in frames])  # [n, H, W, 4]
    diffs = np.abs(imgs[1:] - imgs[:-1]).mean(axis=(1, 2, 3))  # change into frame i+1
    new_onset = counts[1:] > counts[:-1]
    after = diffs[new_onset]
    # "between": frames with no onset in the last 3 frames (the push has had time to settle)
    quiet = np.array([not new_onset[max(0, i - 3) : i + 1].any() for i in range(len(diffs))])
    quiet &= counts[1:] > 0
    between = diffs[quiet]
    assert len(after) == N_CLICKS and len(between) > 5
    # every click moves the picture clearly more than the calm frames do
    assert after.min() > 3 * np.median(between), (after, np.median(between))
    assert np.median(after) > 5 * np.median(between)
