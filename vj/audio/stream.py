"""The one streaming analysis path (live, offline, `vj analyze`): blocks in, AudioFeatures out,
plus the live audio thread that runs it inside the audio callback and publishes to a slot."""

from __future__ import annotations

import collections
import math
import struct
import threading
import time
from collections.abc import Callable

import numpy as np

from vj.audio.analysis import (
    AGC_FLOOR,
    N_ODF,
    ONSET_MERGE_S,
    HopAnalyzer,
    PeakPicker,
    time_constant_coef,
)
from vj.audio.bars import LEVEL_FLOOR
from vj.audio.features import AudioFeatures
from vj.audio.tempo import BeatTracker
from vj.clock import now_ns
from vj.slot import LatestSlot
from vj.tempo import TempoArbiter

# Onset picking thresholds per channel (onset channel, low, mid, high), in units of the mean
# log-flux per filter; tuned with tools/bench_audio.py on the drum stems and the two mixes.
ODF_DELTA = (0.03, 0.5, 0.2, 0.04)
ODF_RATIO = (1.75, 1.5, 1.5, 1.5)
ODF_MEAN_S = (0.3, 0.1, 0.1, 0.1)  # running-mean window of the adaptive threshold
ODF_GAP_S = (0.05, 0.03, 0.03, 0.03)  # shortest time between two onsets
# kick and snare are judged against their own recent hits (the median peak of the last 8,
# decaying over 3 s; see PeakPicker), not a fixed level: in a mix their band flux is a
# fraction of what a drum stem gives
ODF_PEAK_REL = (0.0, 0.7, 0.8, 0.0)
# A snare's wires: a mid (150-2500 Hz) pick counts only when the high band's flux (> 5 kHz) on
# the hop before, its own hop or the next is at least MID_NOISE_RATIO times that band's mean
# over the last MID_NOISE_MEAN_S (the wires' noise is there at once, the body's mid flux builds
# over the window, so the noise can lead the mid pick by a hop). In a mix, guitar and keys chords
# move the mid band as much as a snare but add nothing above 5 kHz (docs/audio.md, "Mid band,
# fourth pass"); a dropped pick's peak stays out of the picker's median.
MID_NOISE_RATIO = 2.0
MID_NOISE_MEAN_S = 2.0
# A kick pick (the held low band) also counts as an onset, merged like the high band's (see
# analysis.ONSET_MERGE_S): after a loud crash + snare the onset channel's running mean stays
# up for a few hundred ms, and a softer kick + crash 200 ms on is missed (drum stems' CY recall
# 0.89 -> 1.00, mixes' KD 0.81 -> 0.91). Two checks keep stationary noise out, whose few low
# bins fluctuate enough to fire the low picker: the low filters stand LOW_ONSET_SHARE times
# over the mean of the filters under 2.5 kHz (~10 dB; white noise sits at 1, and a cymbal's
# wash above does not lower it), and the onset channel is at least LOW_ONSET_FLUX times its
# running mean (noise's low flukes come with a flat onset channel half the time).
LOW_ONSET_SHARE = 3.0
LOW_ONSET_FLUX = 1.0
# A snare's body (180-250 Hz) reaches the low band's filters, so a snare fires the kick picker
# too. A kick pick within SNARE_NEAR_S of a mid pick is a kick only where the low filters
# stand KICK_SHARE times over the mean of the filters under 2.5 kHz (`low_share`) on its hop
# or the mid pick's first, or, waiting, on a hop up to SNARE_NEAR_S later: on the drum stems
# such shared picks read 9.1 (median) on kicks, with or without the snare, and 2.5 on snares
# alone (AUC 0.98). A dropped pick's peak stays out of the kick picker's median, which
# snares' low ends lifted over softer kicks. Kick picks with no snare pick near are published
# at once, as before.
KICK_SHARE = 4.5
SNARE_NEAR_S = 0.012  # 2 hops of 256 at 44.1 kHz
BAND_RANGE_DB = 40.0  # band and RMS outputs span this many dB below their running peak
EVENT_LOG = 4096  # recent onset/beat times kept for readers (`vj analyze` drains it)


class FeatureExtractor:
    """Blocks of any length in, `AudioFeatures` out; all state inside, one analyser per hop.

    `live`: the input is a sound card, which joins whatever is already playing, so sound in
    its first hops is no beat 1 (the bar's start prior waits for music that starts after
    silence). A file or the demo track starts where its music does (`live` False).
    """

    def __init__(
        self,
        sample_rate: int,
        hop: int = 256,
        n_bands: int = 8,
        channel: int | None = None,
        arbiter: TempoArbiter | None = None,
        mid_noise_ratio: float = MID_NOISE_RATIO,
        live: bool = False,
    ) -> None:
        if not 8000 <= sample_rate <= 192000:
            raise ValueError(f"sample_rate {sample_rate} outside 8000..192000 Hz")
        if not 32 <= hop <= 4096:
            raise ValueError(f"hop {hop} outside 32..4096 samples")
        if n_bands < 1:
            raise ValueError(f"n_bands must be ≥ 1, got {n_bands}")
        self.sample_rate = sample_rate
        self.hop = hop
        self.n_bands = n_bands
        self.channel = channel
        self.live = live
        self.hop_ns = hop * 1e9 / sample_rate
        self.analyzer = HopAnalyzer(sample_rate, hop, n_bands)
        rate = sample_rate / hop
        self.pickers = [
            PeakPicker(rate, d, r, m, g, peak_rel=p)
            for d, r, m, g, p in zip(
                ODF_DELTA, ODF_RATIO, ODF_MEAN_S, ODF_GAP_S, ODF_PEAK_REL, strict=True
            )
        ]
        assert N_ODF == 4 and len(self.pickers) == 4  # _hop unrolls the four channels
        self._pick = tuple(p.process for p in self.pickers)
        self.tracker = BeatTracker(rate)
        # the mid band's noise gate (MID_NOISE_RATIO; 0 turns it off) and its state
        self.mid_noise_ratio = mid_noise_ratio
        self._mid_picker = self.pickers[2]
        self._onset_picker = self.pickers[0]
        self._high_mean = 0.0
        self._high_mean_a = time_constant_coef(MID_NOISE_MEAN_S, rate)
        self._mid_wait = False  # fired on the last hop, its noise not there yet
        self._low_picker = self.pickers[1]
        self._near_hops = max(1, round(SNARE_NEAR_S * rate))
        self._mid_ago = 1 << 20  # hops since the mid picker last fired
        self._low_wait = 0  # hops a snare-shared kick pick may still wait for its low share
        self._mid_share = 0.0  # the low share on the hop the last mid pick fired
        self._high_rose = False  # the high band rose on the last hop
        # no mid event and no tracker input (BeatTracker.sound_at_start) while the analysis
        # frame still fills with the stream's first samples (n_fft / hop hops, then flux_lag
        # more for the older frame): the frame rising out of its zero start is no hit (every
        # file's first hop fired the mid band)
        an = self.analyzer
        self._fill_hops = -(-an.n_fft // hop) + an.flux_lag
        self.arbiter = arbiter if arbiter is not None else TempoArbiter()
        self.arbiter.add(self.tracker)  # lowest priority: tap / MIDI clock / Link override it
        # band levels live in Python floats: 8 values cost less as a loop than ~10 ufunc calls
        self._band_scale = 20.0 / BAND_RANGE_DB
        self._band_peak = [-180.0 / BAND_RANGE_DB] * n_bands  # running peak
        # the peak never falls below the floor + the range: silence maps to 0, not to "at peak"
        self._peak_floor = -9.0 * 20.0 / BAND_RANGE_DB + 1.0
        self._band_rel = 6.0 / BAND_RANGE_DB / (3.0 * rate)  # peak falls 6 dB / 3 s
        self._band_val = [0.0] * n_bands  # peak-hold envelope output, 0..1
        self._pack_bands = struct.Struct(f"={n_bands}f").pack
        self._band_decay = math.exp(-1.0 / (0.15 * rate))  # its release, 0.15 s
        self._rms = 0.0  # enveloped normalised RMS
        self._rms_att = time_constant_coef(0.005, rate)
        self._rms_rel = time_constant_coef(0.15, rate)
        self._buf = np.zeros(hop, np.float32)  # carried remainder (mono)
        self._fill = 0
        self._mono = np.zeros(0, np.float32)
        self.onset_count = 0
        self._last_onset_ns = -(1 << 62)
        self._onset_merge_ns = ONSET_MERGE_S * 1e9
        self.band_onset_counts = [0, 0, 0]
        self.beat_count = 0  # beats of whichever tempo source is active
        self._src = "none"  # the active tempo source at the last publish
        self._src_beat = 0  # that source's own beat count when last seen
        self.hops = 0
        self.nonfinite_blocks = 0
        self.onset_strength = 0.0
        self.events: collections.deque[tuple[str, int]] = collections.deque(maxlen=EVENT_LOG)
        self._latest = AudioFeatures(sample_rate=sample_rate, bands=self._frozen_bands())

    # --- public ----------------------------------------------------------------------------
    @property
    def latest(self) -> AudioFeatures:
        return self._latest

    @property
    def last_onset_times(self) -> list[int]:
        """Availability times (ns) of the recent onsets still in the event log."""
        return [t for k, t in tuple(self.events) if k == "onset"]  # tuple(): one C-level copy

    def drain_events(self) -> list[tuple[str, int]]:
        """Take and clear the event log: ("onset" | "low" | "mid" | "high" | "beat", t_ns)."""
        out = list(self.events)
        self.events.clear()
        return out

    def process(self, block: np.ndarray, t_end_ns: int) -> AudioFeatures:
        """Analyse every complete hop in `block` ([frames] or [frames, ch]); the remainder waits.

        Events are stamped with t_end_ns, the time the block (and so the detection) became
        available. Non-finite samples are zeroed, never propagated.
        """
        x = self._view_mono(block)  # float32 [frames]: maybe the caller's own memory
        n = len(x)
        if n == 0:
            return self._latest
        # one pass catches NaN, inf and absurd levels (beyond ~1e19 numpy warns of the
        # overflow once; an errstate guard here would cost more than the rest of this call)
        energy = float(np.dot(x, x))
        if not energy < 64.0 * n:
            finite = math.isfinite(energy)
            energy = None  # changed below: the hop computes its own
            if not np.shares_memory(x, self._mono):
                x = self._to_mono(block)  # never modify the caller's block
            if not finite:
                self.nonfinite_blocks += 1
                np.nan_to_num(x, copy=False, nan=0.0, posinf=1.0, neginf=-1.0)
            np.minimum(x, 8.0, out=x)
            np.maximum(x, -8.0, out=x)
        h = self.hop
        i = 0
        analysed = False
        if n == h and self._fill == 0:  # the live case, one block per hop: its energy is known
            self._hop(x, t_end_ns, energy)
            self._publish(t_end_ns)
            return self._latest
        while i < n:
            if self._fill == 0 and n - i >= h:  # a whole hop in the block: no copy needed
                self._hop(x[i : i + h], t_end_ns)
                i += h
                analysed = True
                continue
            take = min(h - self._fill, n - i)
            self._buf[self._fill : self._fill + take] = x[i : i + take]
            self._fill += take
            i += take
            if self._fill == h:
                self._fill = 0
                self._hop(self._buf, t_end_ns)
                analysed = True
        if analysed:
            self._publish(t_end_ns)
        return self._latest

    # --- internals ---------------------------------------------------------------------------
    def _view_mono(self, block: np.ndarray) -> np.ndarray:
        """The block's samples as float32 [frames]: a view where no conversion is needed."""
        if type(block) is np.ndarray and block.dtype == np.float32:
            if block.ndim == 1:
                return block
            if block.ndim == 2:
                c = self.channel
                if c is None and block.shape[1] == 1:
                    return block[:, 0]
                if c is not None and 0 <= c < block.shape[1]:
                    return block[:, c]
        return self._to_mono(block)

    def _to_mono(self, block: np.ndarray) -> np.ndarray:
        """Downmix or pick the channel into a reused float32 buffer [frames]."""
        b = np.asarray(block)
        frames = b.shape[0]
        if self._mono.shape[0] < frames:
            self._mono = np.zeros(max(frames, 2 * self.hop), np.float32)
        out = self._mono[:frames]
        if b.ndim == 1:
            out[:] = b
        elif b.ndim == 2:
            if self.channel is not None:
                if not 0 <= self.channel < b.shape[1]:
                    raise ValueError(
                        f"channel {self.channel} not in the input's 0..{b.shape[1] - 1}"
                    )
                out[:] = b[:, self.channel]
            elif b.shape[1] == 1:
                out[:] = b[:, 0]
            else:
                np.mean(b, axis=1, out=out, dtype=np.float32)
        else:
            raise ValueError(f"audio block must be [frames] or [frames, channels], got {b.shape}")
        return out

    def _kick(self, t_ns: int, share: float, v_on: float, hit: bool) -> bool:
        """Publish a kick (low) event; returns whether this hop is an onset (LOW_ONSET_SHARE)."""
        self._low_picker.counted = True  # its peak joins the kick picker's median
        self.band_onset_counts[0] += 1
        self.events.append(("low", t_ns))
        if not hit and v_on >= LOW_ONSET_FLUX * self._onset_picker.mean:
            hit = share >= LOW_ONSET_SHARE  # a kick under a wash
        return hit

    def _hop(self, x: np.ndarray, t_ns: int, energy: float | None = None) -> None:
        an = self.analyzer
        an.process(x, energy)
        self.hops += 1
        # as Python floats: ±1 max-filter channels (beats, bands), then the onset channel
        (v_all, v_low, v_mid, v_high), (v_on, _, _, _) = an.odfs.tolist()
        self.onset_strength = v_on
        pick_all, pick_low, pick_mid, pick_high = self._pick  # unrolled: no loop per hop
        hit = pick_all(v_on)
        # the snare's wires (MID_NOISE_RATIO): a mid pick waits at most one hop for the high
        # band to rise; decided before the picker's next step, so a dropped hit's peak is
        # kept out of its median
        hm = self._high_mean
        noisy = v_high >= self.mid_noise_ratio * hm
        self._high_mean = hm + self._high_mean_a * (v_high - hm)
        noisy, self._high_rose = noisy or self._high_rose, noisy  # this hop or the one before
        mid = False
        if self._mid_wait:
            self._mid_wait = False
            if noisy:
                mid = True
            else:
                self._mid_picker.counted = False
        self._mid_ago += 1
        if pick_mid(v_mid):
            if noisy:
                mid = True
            else:
                self._mid_wait = True
        filling = self.hops <= self._fill_hops
        if mid and filling:
            mid = False
        if mid or (self._mid_wait and not filling):
            if self._mid_ago > 1:  # the pick's first hop: the low share before its body is in
                self._mid_share = an.low_share()
            self._mid_ago = 0  # a snare's pick (its wires heard), or one waiting for them
        # kicks are picked on the held low band (analysis.LOW_HOLD_S: a bass line's beating
        # partials swell the one-frame flux every few hops)
        kicked = False  # a kick (low) event on this hop: the bar tracker's kick cue
        if pick_low(an.low_held):  # the picker runs every hop: its state stays whole
            share = an.low_share()
            self._low_wait = 0
            if self._mid_ago <= self._near_hops:  # a snare pick is near: kick only if low
                # filters stand out, on this hop or the snare pick's first
                if max(share, self._mid_share) < KICK_SHARE:
                    self._low_wait = self._near_hops  # or a kick still coming in: wait
                    self._low_picker.counted = False  # not yet part of the kicks' median
            if not self._low_wait:
                hit, kicked = self._kick(t_ns, share, v_on, hit), True
        elif self._low_wait:
            self._low_wait -= 1
            share = an.low_share()
            if share >= KICK_SHARE:
                self._low_wait = 0
                hit, kicked = self._kick(t_ns, share, v_on, hit), True
        if mid:
            self.band_onset_counts[1] += 1
            self.events.append(("mid", t_ns))
        if pick_high(v_high):
            self.band_onset_counts[2] += 1
            self.events.append(("high", t_ns))
            hit = True  # hats/cymbals under a wash or 20 dB down: see analysis.ONSET_MERGE_S
        if hit and t_ns - self._last_onset_ns >= self._onset_merge_ns:
            self._last_onset_ns = t_ns
            self.onset_count += 1
            self.events.append(("onset", t_ns))
        # the tracker always runs (it must stay locked to take over), but its beats only
        # count while it is the active source; tap / MIDI clock / Link beats come in _publish.
        # Its phase cue is the high band: hats and cymbals sit on the beat in every annotated
        # file (kick + snare do not: syncopated kicks, off-beat snares)
        if filling:  # no hit, but maybe sound: the tracker keeps the first call
            if an.rms > AGC_FLOOR:
                self.tracker.sound_at_start(joined=self.live)
            v_all = v_high = v_low = v_mid = 0.0
        # bands: level against each band's slowly falling peak, in units of BAND_RANGE_DB
        # (0 = that far below the peak, 1 = at the peak), then peak-hold envelope.
        g = an.gain
        scale, rel = self._band_scale, self._band_rel
        floor, dec = self._peak_floor, self._band_decay
        peak, val = self._band_peak, self._band_val
        log10 = math.log10
        i = 0
        for b in an.bands_raw.tolist():
            b *= g
            lv = log10(b if b > 1e-9 else 1e-9) * scale
            p = peak[i] - rel
            if lv > p:
                p = lv
            if floor > p:
                p = floor
            peak[i] = p
            norm = lv - p + 1.0  # ≤ 1 by construction; below 0 the envelope floors it
            v = val[i] * dec
            val[i] = norm if norm > v else v
            i += 1
        # the top band's level in dB (lv is the last band's, in BAND_RANGE_DB units): bar phase
        top = LEVEL_FLOOR if filling else max(lv * BAND_RANGE_DB, LEVEL_FLOOR)
        # the bar's kick cue: the low flux only where a kick was published (KICK_SHARE), so a
        # snare's body no longer counts as a kick on 2 and 4 (docs/audio.md, "Kicks near snares")
        kick = v_low if kicked else 0.0
        beat = self.tracker.process(v_all, t_ns, v_high, kick, v_mid, top)  # low/mid: bar phase
        if beat and self._src in ("tracker", "none"):
            self.beat_count += 1
            self.events.append(("beat", t_ns))
        r = min(1.0, max(0.0, 1.0 + 20.0 * math.log10(an.rms_norm + 1e-9) / BAND_RANGE_DB))
        d = r - self._rms
        self._rms += d * (self._rms_att if d > 0 else self._rms_rel)

    def _frozen_bands(self) -> np.ndarray:
        # an array over immutable bytes is read-only by construction: one snapshot per block
        # for less than half the cost of np.array + clearing the writeable flag
        return np.frombuffer(self._pack_bands(*self._band_val), np.float32)

    def _publish(self, t_end_ns: int) -> None:
        an = self.analyzer
        st, src = self.arbiter.current(t_end_ns)
        if st is not None and src != "tracker":
            if src != self._src:  # a new source took over: start from its current beat
                self._src_beat = st.beat_count
            elif st.beat_count > self._src_beat:
                self.beat_count += min(st.beat_count - self._src_beat, 4)
                self._src_beat = st.beat_count
                self.events.append(("beat", t_end_ns))
        self._src = src
        # positional, in the field order (a test holds it to the keyword form): 16 keywords
        # cost ~0.55 µs more per block
        self._latest = AudioFeatures(
            t_end_ns,  # t_capture_ns
            now_ns(),  # t_publish_ns
            self.hops,  # block_index
            self.sample_rate,
            self._rms,
            self._frozen_bands(),  # bands
            an.centroid,
            an.flatness,
            self.onset_strength,
            self.onset_count,
            tuple(self.band_onset_counts),
            self.beat_count,
            st.bpm if st else 0.0,
            st.beat_phase if st else 0.0,
            st.bar_position if st else 0.0,
            src,  # tempo_source
        )


class CallbackStats:
    """Preallocated ring of audio-callback timings (entry interval, wall and CPU duration, ns).

    Wall time much above CPU time means the callback thread was waiting: for the GIL or for
    a CPU (other processes), not working.
    """

    def __init__(self, capacity: int = 16384) -> None:
        self._dur = np.zeros(capacity, np.int64)
        self._cpu = np.zeros(capacity, np.int64)
        self._gap = np.zeros(capacity, np.int64)
        self._n = 0
        self._last = 0

    def record(self, t_enter: int, t_exit: int, cpu_ns: int = 0) -> None:
        i = self._n % len(self._dur)
        self._dur[i] = t_exit - t_enter
        self._cpu[i] = cpu_ns
        self._gap[i] = t_enter - self._last if self._last else 0
        self._last = t_enter
        self._n += 1

    def summary(self) -> dict[str, float]:
        k = min(self._n, len(self._dur))
        if k == 0:
            return {"callbacks": 0}
        d = self._dur[:k] / 1e3
        g = self._gap[:k][self._gap[:k] > 0] / 1e3
        out = {
            "callbacks": float(self._n),
            "dur_us_p50": float(np.percentile(d, 50)),
            "dur_us_p99": float(np.percentile(d, 99)),
            "dur_us_max": float(d.max()),
            "cpu_us_p50": float(np.percentile(self._cpu[:k], 50) / 1e3),
            "cpu_us_p99": float(np.percentile(self._cpu[:k], 99) / 1e3),
        }
        if len(g):
            out |= {
                "interval_us_p50": float(np.percentile(g, 50)),
                "interval_us_p99": float(np.percentile(g, 99)),
                "interval_us_max": float(g.max()),
            }
        return out


class AudioInputThread:
    """Live path: source callback → FeatureExtractor → LatestSlot[AudioFeatures].

    Analysis runs inside the audio callback (see docs/audio.md for the measurements): it costs
    tens of µs per 5 ms block, and a hand-off to another Python thread would add a GIL switch
    (up to `sys.getswitchinterval()`) to every onset's latency. `analysis_overruns` counts
    callbacks whose own CPU time exceeded the block's duration; `late_callbacks` those that
    only took longer in wall time (preempted by other work); `overruns` is the device's count.
    `source_factory(on_block)` returns an object with start()/stop() (LiveSource,
    PlaybackSource) calling on_block(block, t_end_ns).
    """

    def __init__(
        self, source_factory: Callable, extractor: FeatureExtractor, slot: LatestSlot, stamps=None
    ) -> None:
        self._factory = source_factory
        self.extractor = extractor
        self.slot = slot
        self.stamps = stamps  # StampLog; frames are stamped by the generator from t_capture_ns
        self.stats = CallbackStats()
        self.analysis_overruns = 0
        self.late_callbacks = 0
        self.errors = 0
        self.last_error: str | None = None
        self._source = None
        self._last_overruns = 0
        self._lock = threading.Lock()

    def _on_block(self, block: np.ndarray, t_end_ns: int) -> None:
        c0 = time.thread_time_ns()
        t0 = now_ns()
        try:
            feats = self.extractor.process(block, t_end_ns)
            self.slot.publish(feats)
        except Exception as exc:  # never let analysis kill the audio stream
            self.errors += 1
            self.last_error = repr(exc)
        t1 = now_ns()
        cpu = time.thread_time_ns() - c0
        self.stats.record(t0, t1, cpu)
        budget = len(block) * 1_000_000_000
        sr = self.extractor.sample_rate
        # analysis overrun: the callback's own CPU work outlasted the block; a callback that
        # was merely preempted (wall time only) is counted as late instead
        if cpu * sr > budget:
            self.analysis_overruns += 1
        elif (t1 - t0) * sr > budget:
            self.late_callbacks += 1

    def start(self) -> None:
        with self._lock:
            if self._source is None:
                self._source = self._factory(self._on_block)
                self._source.start()

    def stop(self) -> None:
        with self._lock:
            if self._source is not None:
                self._source.stop()
                self._last_overruns = int(getattr(self._source, "overruns", 0))
                self._source = None

    @property
    def source(self):
        return self._source

    @property
    def overruns(self) -> int:
        s = self._source
        return int(getattr(s, "overruns", 0)) if s is not None else self._last_overruns

    @property
    def sample_rate(self) -> int:
        return self.extractor.sample_rate

    def __enter__(self) -> AudioInputThread:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
