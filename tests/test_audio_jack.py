"""Live input through a real JACK dummy server: a WAV played by a JACK client into the app's
sounddevice input yields onsets at the right times; analysis causes no overruns."""

from __future__ import annotations

import time

import numpy as np
import pytest
import soundfile as sf

from tests.jackutil import JackPlayer

pytestmark = pytest.mark.jack

SR = 48000
BLOCK = 256


def click_track(times_s: list[float], seconds: float) -> tuple[np.ndarray, np.ndarray]:
    x = np.zeros(int(seconds * SR), np.float32)
    idx = (np.array(times_s) * SR).astype(np.int64)
    burst = (np.random.default_rng(1).standard_normal(96) * np.exp(-np.arange(96) / 20)) * 0.5
    for i in idx:
        x[i : i + 96] += burst.astype(np.float32)
    return x, idx


def test_wav_through_jack_gives_onsets_on_time(jack_session, tmp_path):
    from vj.audio.source import LiveSource, read_audio
    from vj.audio.stream import AudioInputThread, FeatureExtractor
    from vj.slot import LatestSlot

    times = [0.30, 0.62, 0.81, 1.25, 1.40, 1.93, 2.31, 2.50, 2.95]
    x, idx = click_track(times, 3.3)
    wav = tmp_path / "clicks.wav"
    sf.write(wav, x, SR, subtype="FLOAT")
    samples, sr = read_audio(wav)
    assert sr == SR

    fx = FeatureExtractor(SR, hop=BLOCK)
    slot: LatestSlot = LatestSlot()
    thread = AudioInputThread(lambda cb: LiveSource(cb, block_size=BLOCK), fx, slot)
    player = JackPlayer(samples[:, 0], idx)
    try:
        thread.start()
        assert thread.source.sample_rate == SR
        time.sleep(0.2)
        assert player.connect_to_app(), "PortAudio's JACK input ports not found"
        time.sleep(0.1)
        fx.drain_events()
        player.play()
        assert player.done.wait(10.0)
        time.sleep(0.1)
    finally:
        thread.stop()
        player.close()
    onsets = np.array([t for k, t in fx.drain_events() if k == "onset"])
    clicks = np.array(player.click_times)
    assert len(clicks) == len(times)
    assert len(onsets) == len(times), (onsets - clicks[0]) / 1e6
    delay_ms = (onsets - clicks) / 1e6
    # within one block (5.33 ms) plus one analysis hop plus 2 ms of timestamp jitter
    block_ms = BLOCK / SR * 1e3
    assert np.all(delay_ms > -2.0), delay_ms
    assert np.all(delay_ms < 2 * block_ms + 2.0), delay_ms
    # intervals are clock-domain free: each within one block of the truth
    assert np.all(np.abs(np.diff(onsets) - np.diff(clicks)) / 1e6 < block_ms + 1.0)
    assert thread.analysis_overruns <= 1  # a garbage-collector pass may land in one callback
    assert thread.errors == 0, thread.last_error
    feats = slot.take()
    assert feats is not None and feats.onset_count >= len(times)


def _overrun_run(seconds: float) -> None:
    from vj.audio.source import LiveSource, demo_track
    from vj.audio.stream import AudioInputThread, FeatureExtractor
    from vj.slot import LatestSlot

    track = demo_track(SR, seconds=seconds, bpm=124.0)[:, 0]
    fx = FeatureExtractor(SR, hop=BLOCK)
    slot: LatestSlot = LatestSlot()
    thread = AudioInputThread(lambda cb: LiveSource(cb, block_size=BLOCK), fx, slot)
    player = JackPlayer(track)
    try:
        thread.start()
        time.sleep(0.2)
        assert player.connect_to_app()
        player.play()
        assert player.done.wait(seconds + 10.0)
    finally:
        thread.stop()
        player.close()
    stats = thread.stats.summary()
    print(
        f"{seconds:.0f} s run: device overruns {thread.overruns}, analysis overruns "
        f"{thread.analysis_overruns}, late callbacks {thread.late_callbacks}, "
        f"callback stats (µs) {stats}"
    )
    assert stats["callbacks"] >= 0.9 * seconds * SR / BLOCK
    # analysis (the callback's own CPU time) practically never outlasts its block: a rare
    # spike (a garbage-collector pass, a cold tempo update) is allowed once per 2000 blocks
    assert thread.analysis_overruns <= max(1, stats["callbacks"] // 2000), stats
    assert stats["cpu_us_p99"] < 0.5 * BLOCK / SR * 1e6, stats
    # device overflows (JACK xruns) come from the machine's scheduling when it is shared: an
    # idle 2-core runner drops a few a minute, a loaded CI runner dropped 719 in 60 s while
    # this callback's own CPU time stayed at p99 0.7 ms of the 5.3 ms block (its share is
    # the analysis_overruns above). This bound only catches a stream that does not keep up
    # at all: a callback busy 6 or 8 ms per 5.3 ms block overflowed on 40 % / 51 % of blocks
    assert thread.overruns <= stats["callbacks"] // 4, stats
    assert thread.errors == 0, thread.last_error
    feats = slot.take()
    assert feats.onset_count > seconds * 124 / 60 * 0.8  # the kicks at least
    assert feats.beat_count > 0


def test_short_run_has_no_overruns(jack_session):
    _overrun_run(6.0)


@pytest.mark.slow
def test_60s_run_has_no_overruns(jack_session):
    _overrun_run(60.0)


def test_unknown_device_lists_inputs(jack_session):
    from vj.audio.source import AudioDeviceError, LiveSource, list_input_devices

    assert any("system" in d for d in list_input_devices())
    with pytest.raises(AudioDeviceError) as ei:
        LiveSource(lambda b, t: None, device="no-such-card")
    assert "no-such-card" in str(ei.value) and "system" in str(ei.value)
    with pytest.raises(AudioDeviceError):
        LiveSource(lambda b, t: None, device=99)
    src = LiveSource(lambda b, t: None, device="syst")  # name substring
    assert src.device_name == "system"


def test_vj_live_tells_the_analysis_a_sound_card_joins_mid_song(jack_session, tmp_path):
    # `vj live` on a sound card (here JACK's) builds FeatureExtractor(live=True): its first
    # sound is no beat 1; a file played as the input starts where its music does
    import argparse

    from vj.cli import build_audio, load_preset_or_default
    from vj.params import default_registry

    preset = load_preset_or_default("default", default_registry())
    base = dict(block_size=BLOCK, input_device=None, sample_rate=None, channel=None, demo=False)
    card = build_audio(argparse.Namespace(file=None, **base), preset, None)
    assert card.extractor.live
    wav = tmp_path / "clicks.wav"
    sf.write(wav, click_track([0.3], 1.0)[0], SR, subtype="FLOAT")
    played = build_audio(argparse.Namespace(file=str(wav), **base), preset, None)
    assert not played.extractor.live
