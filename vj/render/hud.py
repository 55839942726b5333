"""Heads-up display text: a built-in 5x7 bitmap font rasterised to a coverage image on the CPU.

The compositor uploads the coverage image as an R8 texture and draws it over the output.
Lower-case letters are drawn as capitals; characters without a glyph are drawn as '?'.
"""

from __future__ import annotations

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
