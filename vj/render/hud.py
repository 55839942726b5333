"""Heads-up display text: a built-in 5x7 bitmap font rasterised to a coverage image on the CPU.

The compositor uploads the coverage image as an R8 texture and draws it over the output.
Lower-case letters are drawn as capitals; characters without a glyph are drawn as '?'.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

GLYPH_W, GLYPH_H = 5, 7
CELL_W, CELL_H = 6, 9  # glyph plus one column / two rows of spacing
PAD = 2  # font pixels of dim box around the text

# Each glyph: 7 rows, top first, '#' = ink. Drawn for this project.
_FONT_ROWS: dict[str, str] = {
    " ": "...../...../...../...../...../...../.....",
    "0": ".###./#...#/#..##/#.#.#/##..#/#...#/.###.",
    "1": "..#../.##../..#../..#../..#../..#../.###.",
    "2": ".###./#...#/....#/...#./..#../.#.../#####",
    "3": "####./....#/....#/.###./....#/....#/####.",
    "4": "...#./..##./.#.#./#..#./#####/...#./...#.",
    "5": "#####/#..../####./....#/....#/#...#/.###.",
    "6": "..##./.#.../#..../####./#...#/#...#/.###.",
    "7": "#####/....#/...#./..#../.#.../.#.../.#...",
    "8": ".###./#...#/#...#/.###./#...#/#...#/.###.",
    "9": ".###./#...#/#...#/.####/....#/...#./.##..",
    "A": ".###./#...#/#...#/#####/#...#/#...#/#...#",
    "B": "####./#...#/#...#/####./#...#/#...#/####.",
    "C": ".###./#...#/#..../#..../#..../#...#/.###.",
    "D": "###../#..#./#...#/#...#/#...#/#..#./###..",
    "E": "#####/#..../#..../####./#..../#..../#####",
    "F": "#####/#..../#..../####./#..../#..../#....",
    "G": ".###./#...#/#..../#.###/#...#/#...#/.####",
    "H": "#...#/#...#/#...#/#####/#...#/#...#/#...#",
    "I": ".###./..#../..#../..#../..#../..#../.###.",
    "J": "..###/...#./...#./...#./...#./#..#./.##..",
    "K": "#...#/#..#./#.#../##.../#.#../#..#./#...#",
    "L": "#..../#..../#..../#..../#..../#..../#####",
    "M": "#...#/##.##/#.#.#/#.#.#/#...#/#...#/#...#",
    "N": "#...#/#...#/##..#/#.#.#/#..##/#...#/#...#",
    "O": ".###./#...#/#...#/#...#/#...#/#...#/.###.",
    "P": "####./#...#/#...#/####./#..../#..../#....",
    "Q": ".###./#...#/#...#/#...#/#.#.#/#..#./.##.#",
    "R": "####./#...#/#...#/####./#.#../#..#./#...#",
    "S": ".####/#..../#..../.###./....#/....#/####.",
    "T": "#####/..#../..#../..#../..#../..#../..#..",
    "U": "#...#/#...#/#...#/#...#/#...#/#...#/.###.",
    "V": "#...#/#...#/#...#/#...#/#...#/.#.#./..#..",
    "W": "#...#/#...#/#...#/#.#.#/#.#.#/#.#.#/.#.#.",
    "X": "#...#/#...#/.#.#./..#../.#.#./#...#/#...#",
    "Y": "#...#/#...#/.#.#./..#../..#../..#../..#..",
    "Z": "#####/....#/...#./..#../.#.../#..../#####",
    ".": "...../...../...../...../...../.##../.##..",
    ",": "...../...../...../...../.##../..#../.#...",
    ":": "...../.##../.##../...../.##../.##../.....",
    ";": "...../.##../.##../...../.##../..#../.#...",
    "-": "...../...../...../#####/...../...../.....",
    "+": "...../..#../..#../#####/..#../..#../.....",
    "/": "...../....#/...#./..#../.#.../#..../.....",
    "%": "##.../##..#/...#./..#../.#.../#..##/...##",
    "(": "...#./..#../.#.../.#.../.#.../..#../...#.",
    ")": ".#.../..#../...#./...#./...#./..#../.#...",
    "=": "...../...../#####/...../#####/...../.....",
    "_": "...../...../...../...../...../...../#####",
    "!": "..#../..#../..#../..#../..#../...../..#..",
    "?": ".###./#...#/....#/...#./..#../...../..#..",
    "'": "..#../..#../.#.../...../...../...../.....",
    '"': ".#.#./.#.#./...../...../...../...../.....",
    "<": "...#./..#../.#.../#..../.#.../..#../...#.",
    ">": ".#.../..#../...#./....#/...#./..#../.#...",
    "*": "...../..#../#.#.#/.###./#.#.#/..#../.....",
    "#": ".#.#./.#.#./#####/.#.#./#####/.#.#./.#.#.",
    "[": ".###./.#.../.#.../.#.../.#.../.#.../.###.",
    "]": ".###./...#./...#./...#./...#./...#./.###.",
    "|": "..#../..#../..#../..#../..#../..#../..#..",
    "●": "...../.###./#####/#####/#####/.###./.....",
}


def _build_font() -> dict[str, np.ndarray]:
    font: dict[str, np.ndarray] = {}
    for ch, rows in _FONT_ROWS.items():
        parts = rows.split("/")
        if len(parts) != GLYPH_H or any(len(r) != GLYPH_W for r in parts):
            raise ValueError(f"hud font glyph {ch!r} is not {GLYPH_W}x{GLYPH_H}")
        font[ch] = np.array([[c == "#" for c in r] for r in parts], np.uint8) * 255  # [7, 5]
    return font


class HudText:
    """Rasterises lines of text into a reused coverage image (0 or 255), top row first."""

    def __init__(self) -> None:
        self._font = _build_font()
        self._lines: tuple[str, ...] | None = None
        self._image = np.zeros((0, 0), np.uint8)

    def glyph(self, ch: str) -> np.ndarray:
        """[7, 5] uint8 coverage of one character."""
        return self._font.get(ch.upper(), self._font["?"])

    def layout_size(self, lines: list[str] | tuple[str, ...]) -> tuple[int, int]:
        """(width, height) in font pixels of the box for these lines, padding included."""
        if not lines:
            return (0, 0)
        cols = max(len(s) for s in lines)
        return (cols * CELL_W - 1 + 2 * PAD, len(lines) * CELL_H - 2 + 2 * PAD)

    def render(self, lines: list[str] | tuple[str, ...]) -> tuple[np.ndarray, bool]:
        """Coverage image [h, w] uint8 for `lines` and whether it changed since the last call."""
        key = tuple(lines)
        if key == self._lines:
            return self._image, False
        w, h = self.layout_size(key)
        img = np.zeros((h, w), np.uint8)
        for row, text in enumerate(key):
            y = PAD + row * CELL_H
            for col, ch in enumerate(text):
                if ch == " ":
                    continue
                x = PAD + col * CELL_W
                img[y : y + GLYPH_H, x : x + GLYPH_W] = self.glyph(ch)
        self._lines, self._image = key, img
        return img, True


# -- the operator overlay: status lines and a frame-time graph ------------------------------
MIDI_BLINK_S = 0.3  # the MIDI light stays on this long after a message


@dataclass(frozen=True)
class HudStatus:
    """What the HUD / operator view reports; the live driver fills it once per frame."""

    display_fps: float = 0.0
    generator_fps: float = 0.0
    latency_ms: float = float("nan")  # audio capture → composited frame on screen
    bpm: float = 0.0
    beat_phase: float = 0.0  # 0..1
    bar_phase: float = 0.0  # 0..1
    beats_per_bar: int = 4
    tempo_source: str = "none"
    midi_events: int = 0  # MIDI messages so far
    midi_age_s: float = float("inf")  # seconds since the last one
    midi_last: str = ""  # the newest message, decoded ("cc 7=100 ch1 > zoom 0.79")
    preset: str = ""
    cue: str = ""
    morph: float = 1.0  # progress of a running preset morph, 1 = none
    warnings: tuple[str, ...] = ()


def _phase_bar(phase: float, n: int) -> str:
    """`[##--]`: n cells, filled up to the phase."""
    k = min(n, max(0, int(phase * n) + 1))
    return "[" + "#" * k + "-" * (n - k) + "]"


def status_lines(st: HudStatus) -> list[str]:
    """The HUD's text, one fact per line, fixed widths so it does not jump."""
    lat = f"{st.latency_ms:6.1f} MS" if math.isfinite(st.latency_ms) else "    --"
    beat = int(st.bar_phase * st.beats_per_bar) + 1
    midi = (
        "MIDI --"
        if st.midi_events == 0
        else f"MIDI {'●' if st.midi_age_s < MIDI_BLINK_S else ' '} {st.midi_events:6d}  "
        + st.midi_last
    ).rstrip()
    morph = "" if st.morph >= 1.0 else f"  morph {st.morph:4.0%}"
    lines = [
        f"display {st.display_fps:5.1f} fps  generator {st.generator_fps:5.1f} fps",
        f"latency {lat}",
        f"bpm {st.bpm:6.1f} ({st.tempo_source})  beat {beat}/{st.beats_per_bar} "
        f"{_phase_bar(st.beat_phase, 4)} bar {_phase_bar(st.bar_phase, 8)}",
        midi,
        f"preset {st.preset or '-'}  cue {st.cue or '-'}{morph}",
    ]
    return lines + [f"! {w}" for w in st.warnings]


def frame_time_graph(
    times_ms,
    width: int = 120,
    height: int = 20,
    full_ms: float = 50.0,
    budget_ms: float = 1000 / 60,
) -> np.ndarray:
    """Coverage [height, width] uint8: one column per frame (newest right), bar = frame time.

    A dotted line marks the budget (one 60 Hz frame); bars over `full_ms` are clipped.
    """
    img = np.zeros((height, width), np.uint8)
    t = np.asarray(list(times_ms)[-width:], np.float64)
    if t.size:
        bars = np.clip(np.round(t / full_ms * height), 1, height).astype(int)
        x0 = width - t.size
        for i, b in enumerate(bars):
            img[height - b :, x0 + i] = 160
    y = height - max(1, int(round(budget_ms / full_ms * height)))
    img[y, ::2] = 255
    return img


def stack(text: np.ndarray, graph: np.ndarray | None, gap: int = 2) -> np.ndarray:
    """The text coverage with the graph below it (left-aligned, padded to one width)."""
    if graph is None:
        return text
    w = max(text.shape[1], graph.shape[1] + 2 * PAD)
    out = np.zeros((text.shape[0] + gap + graph.shape[0] + PAD, w), np.uint8)
    out[: text.shape[0], : text.shape[1]] = text
    y = text.shape[0] + gap
    out[y : y + graph.shape[0], PAD : PAD + graph.shape[1]] = graph
    return out
