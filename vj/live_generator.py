"""The live driver's generator side: the thread that ticks the Show and renders each deck
(`GeneratorThread`, paced, supervised), the `GenFrame` it hands the render loop, and
`ExternalTempo`, which turns Link / MIDI clock into the Show's tempo events."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from vj.audio.features import AudioFeatures
from vj.clock import StampLog, now_ns
from vj.show.frame import DECKS, ControlEvent, ShowFrame
from vj.show.wiring import engine_for
from vj.slot import LatestSlot
from vj.supervise import Supervisor

TEMPO_RESYNC_BEATS = 0.02  # an external source further than this from the Show's view: re-anchor


@dataclass(frozen=True)
class GenFrame:
    """A finished generator tick, handed to the render thread."""

    index: int
    rgba: object  # deck A's picture: [H, W, 4] uint8 numpy (CPU) or CUDA tensor
    t_ready_ns: int
    features: AudioFeatures
    show: ShowFrame | None = None
    pictures: tuple[tuple[str, object], ...] = ()  # (deck, rgba) for each deck made this tick
    # The pictures are the engines' own ring buffers (no copy): valid until their slot is
    # reused; the display reads them through the decks' FrameExchanges, a hook copies them.


class ExternalTempo:
    """Samples Link / MIDI clock and turns what they say into `tempo` events for the Show.

    An event goes out only when the source starts, stops, changes BPM or drifts more than
    TEMPO_RESYNC_BEATS from where the Show's copy has it, so a recorded log stays small and
    replays the same beats.
    """

    def __init__(self, sources: dict[str, object], sink: Callable[[ControlEvent], None]) -> None:
        self._sources = sources  # event source name ("link", "clock") → TempoSource
        self._sink = sink
        self._seen: dict[str, tuple[float, int, float] | None] = dict.fromkeys(sources)

    def poll(self, t_ns: int) -> None:
        for name, src in self._sources.items():
            st = src.state(t_ns)
            seen = self._seen[name]
            if st is None:
                if seen is not None:
                    self._sink(ControlEvent(t_ns, name, "tempo.stop", 0.0))
                    self._seen[name] = None
                continue
            pos = st.beat_count + st.beat_phase
            if seen is not None:
                bpm, t0, pos0 = seen
                predicted = pos0 + (t_ns - t0) * bpm / 60e9
                if abs(bpm - st.bpm) < 1e-3 and abs(predicted - pos) < TEMPO_RESYNC_BEATS:
                    continue
            self._sink(ControlEvent(t_ns, name, "tempo", float(st.bpm)))
            self._sink(ControlEvent(t_ns, name, "tempo.beat", float(pos)))
            self._seen[name] = (float(st.bpm), t_ns, pos)


class GeneratorThread(threading.Thread):
    """Tick the Show, render each deck due this tick, publish the pictures.

    Paced by `pacer` (vj.gan.pacing.FramePacer: no faster than the display, an idle rate while
    the audio has no news) instead of free-running; without one it runs flat out (benchmarks).
    Each deck renders into a slot of its FrameExchange and publishes that slot: no copy.
    """

    def __init__(
        self,
        show,
        engines: list,
        frames: LatestSlot,
        stamps: StampLog,
        on_frame=None,
        clock: Callable[[], int] = now_ns,
        decks_every: tuple[int, ...] = (1, 1),
        tempo: ExternalTempo | None = None,
        restart: Callable[[], None] | None = None,
        pacer=None,
        exchanges: list | None = None,
    ) -> None:
        from vj.gan.pacing import FrameExchange

        super().__init__(name="vj-generator", daemon=True)
        self.show, self._engines, self._frames = show, engines, frames
        self._stamps, self._on_frame = stamps, on_frame
        self._clock = clock
        self._every = decks_every
        self._tempo = tempo
        self._names = DECKS[: len(engines)]
        self.pacer = pacer
        # one exchange per deck, over its engine's ring (deck B may run every n-th tick)
        self.exchanges = exchanges or [FrameExchange(e.n_buffers) for e in engines]
        self._halt = threading.Event()
        self.error: BaseException | None = None
        self.frame_times = np.zeros(64, np.int64)  # ring of finish times, for the HUD's gen fps
        self.count = 0
        # A failed tick (an exception, CUDA out of memory) does not end the show: the display
        # keeps the last published frame and its effects, the HUD says so, and `restart`
        # (rebuild the engines) runs after a growing back-off.
        self.supervisor = Supervisor("generator", self.tick, restart, warn=warn)

    def run(self) -> None:
        try:
            while not self._halt.is_set() and (self.pacer is None or self.pacer.wait()):
                if self.supervisor.step(fallback=None) is None:
                    self._halt.wait(0.01)  # down: wait for the back-off without spinning
        except BaseException as exc:  # Ctrl-C / exit: surfaced by the render loop
            self.error = exc

    def tick(self) -> GenFrame:
        """One tick at the clock's now (tests call this directly with a virtual clock)."""
        k = self.count
        t_start = self._clock()
        if self._tempo is not None:
            self._tempo.poll(t_start)
        want = [
            n
            for i, n in enumerate(self._names)
            if k % max(self._every[i] if i < len(self._every) else 1, 1) == 0
        ]
        fr = self.show.frame(t_start, want)
        if self.pacer is not None:
            self.pacer.started()  # after reading the inputs: news from now on is for the next
        feats = fr.features
        self._stamps.stamp(k, "capture", feats.t_capture_ns or t_start)
        self._stamps.stamp(k, "features", feats.t_publish_ns or t_start)
        self._stamps.stamp(k, "gen_start", t_start)
        made = []  # (deck index, slot, engine Frame)
        for dc in fr.decks:
            d = DECKS.index(dc.deck)
            # a slot the display neither holds nor has waiting: nothing shown is rewritten
            slot = self.exchanges[d].acquire()
            try:
                engine = engine_for(self._engines, dc, getattr(self.show, "models", None))
                made.append((d, slot, engine.render_async(dc, slot=slot)))
            except BaseException:  # nothing half-written is published; the supervisor restarts
                for d2, s2, _ in [*made, (d, slot, None)]:
                    self.exchanges[d2].abandon(s2)
                raise
        t_end = self._clock()
        self._stamps.stamp(k, "gen_end", t_end)
        pics = tuple((DECKS[d], f.rgba) for d, _, f in made)
        rgba_a = next((r for d, r in pics if d == "A"), None)
        item = GenFrame(k, rgba_a, t_end, feats, fr, pics)
        for d, slot, f in made:
            self.exchanges[d].publish(slot, (f, item))
        self._frames.publish(item)
        self.frame_times[k % len(self.frame_times)] = t_end
        self.count = k + 1
        if self._on_frame is not None:
            self._on_frame(item)
        return item

    def stop(self) -> None:
        self._halt.set()
        if self.pacer is not None:
            self.pacer.close()

    def fps(self) -> float:
        n = min(self.count, len(self.frame_times))
        if n < 2:
            return 0.0
        t = np.sort(self.frame_times[:n]) if self.count > n else self.frame_times[:n]
        span = t[-1] - t[0]
        return 0.0 if span <= 0 else (n - 1) * 1e9 / span


def warn(msg: str) -> None:
    print(f"vj: {msg}", file=sys.stderr, flush=True)
