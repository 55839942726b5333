"""MIDI mappings: one control → one parameter, decoded by `MidiMapper` (pure logic, no I/O).

Bytes in → registry writes (curves, ranges, soft takeover, relative and 14-bit CCs, note
modes, learn); registry changes → feedback bytes out. Mapping files are YAML, saved atomically.
"""

from __future__ import annotations

import math
import shutil
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from vj.fsutil import atomic_path, atomic_write_bytes
from vj.params import ParamRegistry

KINDS = ("cc", "cc14", "cc_rel2c", "cc_rel64", "note", "pitchbend", "program")
CURVES = ("linear", "exp", "log", "scurve")
NOTE_MODES = ("trigger", "toggle", "momentary", "velocity")
ABSOLUTE = ("cc", "cc14", "pitchbend")  # kinds with a physical position (soft takeover applies)
_EXP_K = 4.0  # steepness of the exp/log curves: y = (2^(kx) - 1) / (2^k - 1)
_EXP_D = 2.0**_EXP_K - 1.0
_LEARN_CC14_NS = 200_000_000  # an LSB (cc n+32) this soon after a learned cc n makes it 14-bit
_TAKEOVER_TOL = 1.5 / 127.0  # a knob this close (in control units) to the value catches it


@dataclass(frozen=True)
class Mapping:
    """One control → one parameter. `channel` is 0–15 (None = any); `range` is in param units."""

    kind: str
    number: int
    param: str
    channel: int | None = None
    range: tuple[float, float] | None = None  # None = the parameter's full range
    curve: str = "linear"
    invert: bool = False
    note_mode: str = "momentary"
    soft_takeover: bool = False
    feedback: bool = True

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"mapping kind {self.kind!r} not in {KINDS}")
        if self.curve not in CURVES:
            raise ValueError(f"mapping curve {self.curve!r} not in {CURVES}")
        if self.note_mode not in NOTE_MODES:
            raise ValueError(f"mapping note_mode {self.note_mode!r} not in {NOTE_MODES}")
        hi = 31 if self.kind == "cc14" else 127
        if not 0 <= self.number <= hi:
            raise ValueError(f"mapping {self.kind} number {self.number} outside 0..{hi}")
        if self.channel is not None and not 0 <= self.channel <= 15:
            raise ValueError(f"mapping channel {self.channel} outside 0..15")

    def controls(self) -> list[tuple[str, int]]:
        """The (message class, number) pairs this mapping listens to (for duplicate checks)."""
        if self.kind == "cc14":
            return [("cc", self.number), ("cc", self.number + 32)]
        if self.kind in ("cc", "cc_rel2c", "cc_rel64"):
            return [("cc", self.number)]
        if self.kind == "pitchbend":
            return [("pitchbend", 0)]
        return [(self.kind, self.number)]

    def overlaps(self, other: Mapping) -> bool:
        if self.channel is not None and other.channel is not None and self.channel != other.channel:
            return False
        return bool(set(self.controls()) & set(other.controls()))

    def describe(self) -> str:
        ch = "any channel" if self.channel is None else f"channel {self.channel + 1}"
        num = "" if self.kind == "pitchbend" else f" {self.number}"
        return f"{self.kind}{num} ({ch}) → {self.param}"


# -- curves: control position x ∈ [0, 1] → y ∈ [0, 1], each with its exact inverse ----------
def apply_curve(curve: str, x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    if curve == "exp":
        return (2.0 ** (_EXP_K * x) - 1.0) / _EXP_D
    if curve == "log":
        return math.log2(1.0 + x * _EXP_D) / _EXP_K
    if curve == "scurve":
        return x * x * (3.0 - 2.0 * x)
    return x


def invert_curve(curve: str, y: float) -> float:
    y = min(max(y, 0.0), 1.0)
    if curve == "exp":
        return math.log2(1.0 + y * _EXP_D) / _EXP_K
    if curve == "log":
        return (2.0 ** (_EXP_K * y) - 1.0) / _EXP_D
    if curve == "scurve":
        return 0.5 - math.sin(math.asin(1.0 - 2.0 * y) / 3.0)
    return y


class _Table:
    """Mappings plus their decoding state, indexed; replaced whole when mappings change."""

    def __init__(self, maps: list[Mapping]) -> None:
        self.maps = maps
        self.by_key: dict[tuple[str, int], list[int]] = {}
        self.by_param: dict[str, list[int]] = {}
        for i, m in enumerate(maps):
            for key in m.controls():
                self.by_key.setdefault(key, []).append(i)
            self.by_param.setdefault(m.param, []).append(i)
        n = len(maps)
        self.caught = [False] * n  # soft takeover: has the knob met the value yet?
        self.last_x = [-1.0] * n  # last control position (soft takeover), -1 = none yet
        self.msb = [0] * n  # cc14: last MSB seen
        self.lsb = [0] * n
        self.sent: list[list | None] = [None] * n  # last feedback per mapping, to skip repeats
        self.pressed = [False] * n  # cc buttons: was the button down


class MidiMapper:
    """Decodes MIDI messages for a list of mappings and writes the registry.

    `handle` may be called from several MIDI threads at once (one per bound port); decoding
    state is guarded by a lock. Registry writes carry the source tag `midi@<id>#<index>` so
    soft takeover and feedback can tell this mapper's own writes from everyone else's.
    """

    def __init__(
        self,
        registry: ParamRegistry,
        mappings: Iterable[Mapping],
        send: Callable[[list[int]], None] | None = None,
    ) -> None:
        self.registry = registry
        self.send = send
        self.on_program: Callable[[int], None] | None = None
        self.on_realtime: Callable[[list[int], int], None] | None = None
        self.on_learned: Callable[[Mapping], None] | None = None
        self.on_message: Callable[[list[int], int], None] | None = None  # every message (HUD)
        self.errors = 0  # malformed messages seen (never raised)
        self._tag = f"midi@{id(self):x}#"
        self._lock = threading.RLock()
        self._learn: str | None = None
        self._learn_kind: str | None = None
        self._learned_at: tuple[int, int, int] | None = None  # (index, channel, t_ns) for cc14
        self._set_mappings(list(mappings))
        self._listener = self._on_param  # one bound method: remove_listener compares identity
        registry.add_listener(self._listener)

    # -- public --------------------------------------------------------------------------
    @property
    def mappings(self) -> list[Mapping]:
        return list(self._t.maps)

    def set_mappings(self, mappings: Iterable[Mapping]) -> None:
        with self._lock:
            self._set_mappings(list(mappings))

    def close(self) -> None:
        """Stop listening to the registry (no more feedback)."""
        self.registry.remove_listener(self._listener)

    def learn(self, param: str, kind: str | None = None) -> None:
        """Bind the next control moved to `param` (`kind` forces e.g. 'cc_rel64')."""
        self.registry.spec(param)  # unknown names fail here, with a suggestion
        if kind is not None and kind not in KINDS:
            raise ValueError(f"learn kind {kind!r} not in {KINDS}")
        with self._lock:
            self._learn, self._learn_kind = param, kind

    def cancel_learn(self) -> None:
        with self._lock:
            self._learn = None

    @property
    def learning(self) -> str | None:
        return self._learn

    def handle(self, message: list[int], t_ns: int) -> None:
        """Decode one MIDI message. Any input, malformed included, is survived silently."""
        try:
            if self.on_message is not None:
                self.on_message(message, t_ns)
            self._handle(message, t_ns)
        except Exception:  # a controller must never take the show down
            self.errors += 1

    def feedback_messages(self) -> list[list[int]]:
        """Messages that show every feedback mapping's current value (sent on port bind)."""
        out: list[list[int]] = []
        t = self._t
        for i, m in enumerate(t.maps):
            if m.feedback:
                out += self._feedback_for(i, m, self.registry.get(m.param), force=True, t=t)
        return out

    # -- decoding ------------------------------------------------------------------------
    def _set_mappings(self, maps: list[Mapping]) -> None:
        for m in maps:
            self.registry.spec(m.param)
        self._t = _Table(maps)  # one attribute store: listener threads see old or new, whole

    def _handle(self, msg: list[int], t_ns: int) -> None:
        if not msg:
            return
        status = int(msg[0])
        if status < 0x80 or status > 0xFF:
            self.errors += 1
            return
        if status >= 0xF0:
            if status in (0xF2, 0xF8, 0xFA, 0xFB, 0xFC) and self.on_realtime is not None:
                self.on_realtime(list(msg), t_ns)
            return
        data = [int(b) for b in msg[1:3]]
        need = 1 if status & 0xF0 in (0xC0, 0xD0) else 2
        if len(data) < need or any(not 0 <= b <= 127 for b in data):
            self.errors += 1
            return
        kind, ch = status & 0xF0, status & 0x0F
        with self._lock:
            if kind == 0xB0:
                self._cc(ch, data[0], data[1], t_ns)
            elif kind in (0x90, 0x80):
                vel = data[1] if kind == 0x90 else 0
                self._note(ch, data[0], vel)
            elif kind == 0xE0:
                self._pitchbend(ch, data[0] | (data[1] << 7))
            elif kind == 0xC0:
                self._program(ch, data[0])
        if kind == 0xC0 and self.on_program is not None:
            self.on_program(data[0])

    def _targets(self, key: tuple[str, int], ch: int) -> list[int]:
        idx = self._t.by_key.get(key)
        if not idx:
            return []
        return [i for i in idx if self._t.maps[i].channel in (None, ch)]

    def _cc(self, ch: int, num: int, val: int, t_ns: int) -> None:
        if self._learn is not None and self._learn_cc(ch, num, val, t_ns):
            return
        if self._learned_at is not None and self._maybe_cc14(ch, num, t_ns):
            return
        for i in self._targets(("cc", num), ch):
            m = self._t.maps[i]
            if m.kind == "cc":
                if m.note_mode in ("trigger", "toggle") or self._is_trigger(m):
                    down = val >= 64
                    if down and not self._t.pressed[i]:
                        self._press(i, m, 127)
                    self._t.pressed[i] = down
                else:
                    self._absolute(i, m, val / 127.0, 1.0 / 127.0)
            elif m.kind == "cc14":
                if num == m.number:  # MSB: per the MIDI spec it resets the LSB
                    self._t.msb[i], self._t.lsb[i] = val, 0
                else:
                    self._t.lsb[i] = val
                self._absolute(
                    i, m, ((self._t.msb[i] << 7) | self._t.lsb[i]) / 16383.0, 1 / 16383.0
                )
            else:
                if m.kind == "cc_rel2c":
                    delta = val - 128 if val >= 64 else val
                else:
                    delta = val - 64
                if delta:
                    x = self._position(m, self.registry.get(m.param))
                    self._write(i, m, x + delta / 127.0)

    def _note(self, ch: int, num: int, vel: int) -> None:
        if self._learn is not None and vel > 0:
            self._bind_learned(Mapping("note", num, self._learn, channel=ch), ch, 0)
            return
        for i in self._targets(("note", num), ch):
            m = self._t.maps[i]
            if vel > 0:
                self._press(i, m, vel)
            elif m.note_mode == "momentary" and not self._is_trigger(m):
                self._write(i, m, 0.0)

    def _pitchbend(self, ch: int, value14: int) -> None:
        if self._learn is not None:
            self._bind_learned(Mapping("pitchbend", 0, self._learn, channel=ch), ch, 0)
            return
        for i in self._targets(("pitchbend", 0), ch):
            self._absolute(i, self._t.maps[i], value14 / 16383.0, 1 / 16383.0)

    def _program(self, ch: int, num: int) -> None:
        for i in self._targets(("program", num), ch):
            self._press(i, self._t.maps[i], 127)

    def _is_trigger(self, m: Mapping) -> bool:
        return self.registry.spec(m.param).kind == "trigger"

    def _press(self, i: int, m: Mapping, vel: int) -> None:
        """A button press (note on, program change, CC button crossing 64)."""
        if self._is_trigger(m):
            self.registry.trigger(m.param, self._tag + str(i))
        elif m.note_mode == "velocity":
            self._write(i, m, vel / 127.0)
        elif m.note_mode == "toggle":
            on = self._position(m, self.registry.get(m.param)) >= 0.5
            self._write(i, m, 0.0 if on else 1.0)
        else:  # momentary and trigger: press = the top of the range
            self._write(i, m, 1.0)

    def _absolute(self, i: int, m: Mapping, x: float, step: float) -> None:
        """An absolute control moved to position x; soft takeover may hold it back."""
        if m.soft_takeover and not self._t.caught[i]:
            cur = self._position(m, self.registry.get(m.param))
            last = self._t.last_x[i]
            self._t.last_x[i] = x
            crossed = last >= 0.0 and min(last, x) - step <= cur <= max(last, x) + step
            if not (crossed or abs(x - cur) <= max(_TAKEOVER_TOL, step)):
                return
            self._t.caught[i] = True
        self._t.last_x[i] = x
        self._write(i, m, x)

    def _write(self, i: int, m: Mapping, x: float) -> None:
        self.registry.set(m.param, self._value(m, x), self._tag + str(i))

    # -- control position ↔ parameter value ----------------------------------------------
    def _range(self, m: Mapping) -> tuple[float, float]:
        if m.range is not None:
            return m.range
        spec = self.registry.spec(m.param)
        return spec.min, spec.max

    def _value(self, m: Mapping, x: float) -> float:
        x = min(max(x, 0.0), 1.0)
        if m.invert:
            x = 1.0 - x
        lo, hi = self._range(m)
        return lo + apply_curve(m.curve, x) * (hi - lo)

    def _position(self, m: Mapping, value: float) -> float:
        """The control position (0..1) that would give `value` (clamped into the range)."""
        lo, hi = self._range(m)
        y = 0.0 if hi == lo else (value - lo) / (hi - lo)
        x = invert_curve(m.curve, y)
        return 1.0 - x if m.invert else x

    # -- learn ---------------------------------------------------------------------------
    def _learn_cc(self, ch: int, num: int, val: int, t_ns: int) -> bool:
        kind = self._learn_kind or "cc"
        if kind == "cc14" and num >= 32:
            return True  # wait for the MSB
        return self._bind_learned(Mapping(kind, num, self._learn, channel=ch), ch, t_ns)

    def _bind_learned(self, m: Mapping, ch: int, t_ns: int) -> bool:
        spec = self.registry.spec(m.param)
        if m.kind == "note":
            mode = {"bool": "toggle", "trigger": "trigger"}.get(spec.kind, "momentary")
            m = replace(m, note_mode=mode)
        keep = [old for old in self._t.maps if not old.overlaps(m)]
        keep.append(m)
        self._set_mappings(keep)
        self._learn = None
        self._learned_at = (len(keep) - 1, ch, t_ns) if m.kind == "cc" and m.number < 32 else None
        if self.on_learned is not None:
            self.on_learned(m)
        return True

    def _maybe_cc14(self, ch: int, num: int, t_ns: int) -> bool:
        """A learned cc n followed quickly by cc n+32 is a 14-bit pair: upgrade the binding."""
        la = self._learned_at
        if la is None:
            return False
        i, lch, t0 = la
        if i >= len(self._t.maps) or ch != lch or t_ns - t0 > _LEARN_CC14_NS:
            self._learned_at = None
            return False
        m = self._t.maps[i]
        if m.kind != "cc" or num != m.number + 32:
            return False
        self._learned_at = None
        m14 = replace(m, kind="cc14")
        maps = [x for j, x in enumerate(self._t.maps) if j != i and not x.overlaps(m14)]
        maps.append(m14)
        self._set_mappings(maps)
        if self.on_learned is not None:
            self.on_learned(m14)
        return True

    # -- feedback ------------------------------------------------------------------------
    def _on_param(self, name: str, value: float, source: str) -> None:
        t = self._t
        idx = t.by_param.get(name)
        if not idx:
            return
        own = -1
        if source.startswith(self._tag):
            try:
                own = int(source[len(self._tag) :])
            except ValueError:
                own = -1
        for i in idx:
            m = t.maps[i]
            if i != own:
                t.caught[i] = False  # someone else moved it: the knob must catch up
            if m.feedback and self.send is not None:
                # an absolute control already shows what it just sent; echoing would fight it
                if i == own and self._shows_itself(m):
                    continue
                for msg in self._feedback_for(i, m, value, t=t):
                    try:
                        self.send(msg)
                    except Exception:
                        self.errors += 1

    def _shows_itself(self, m: Mapping) -> bool:
        """Does the control already show the value it just sent (a fader, a held pad)?"""
        if m.kind == "cc":
            return m.note_mode not in ("trigger", "toggle")
        if m.kind == "note":
            return m.note_mode in ("momentary", "velocity")
        return m.kind in ABSOLUTE

    def _feedback_for(
        self, i: int, m: Mapping, value: float, force: bool = False, t: _Table | None = None
    ) -> list:
        t = t if t is not None else self._t
        ch = m.channel or 0
        if m.kind == "program" or self._is_trigger(m):
            return []
        x = min(max(self._position(m, value), 0.0), 1.0)
        if m.kind == "cc14":
            v = round(x * 16383)
            msgs = [[0xB0 | ch, m.number, v >> 7], [0xB0 | ch, m.number + 32, v & 0x7F]]
        elif m.kind == "pitchbend":
            v = round(x * 16383)
            msgs = [[0xE0 | ch, v & 0x7F, v >> 7]]
        elif m.kind == "note":
            v = round(x * 127) if m.note_mode == "velocity" else (127 if x >= 0.5 else 0)
            msgs = [[0x90 | ch, m.number, v]]
        else:
            msgs = [[0xB0 | ch, m.number, round(x * 127)]]
        if not force and t.sent[i] == msgs:
            return []
        t.sent[i] = msgs
        return msgs


def describe_message(msg: list[int]) -> str:
    """A MIDI message in words, for monitors and logs ('ch 1  cc 16 = 64')."""
    if not msg:
        return "(empty)"
    status = msg[0]
    if status >= 0xF0:
        names = {0xF8: "clock", 0xFA: "start", 0xFB: "continue", 0xFC: "stop",
                 0xF2: "song position", 0xFE: "active sensing", 0xFF: "reset",
                 0xF0: "sysex"}  # fmt: skip
        return names.get(status, f"system 0x{status:02X}") + (f" {msg[1:]}" if msg[1:] else "")
    kind, ch, d = status & 0xF0, (status & 0x0F) + 1, list(msg[1:]) + [0, 0]
    text = {
        0x80: f"note {d[0]} off",
        0x90: f"note {d[0]} on, velocity {d[1]}" if d[1] else f"note {d[0]} off",
        0xA0: f"aftertouch note {d[0]} = {d[1]}",
        0xB0: f"cc {d[0]} = {d[1]}",
        0xC0: f"program {d[0]}",
        0xD0: f"channel pressure {d[0]}",
        0xE0: f"pitch bend {(d[0] | (d[1] << 7)) - 8192:+d}",
    }.get(kind, f"status 0x{status:02X}")
    return f"ch {ch:<2}  {text}"


# -- files ---------------------------------------------------------------------------------
def load_mappings(path: str | Path, registry: ParamRegistry | None = None) -> list[Mapping]:
    """Read a mapping file (`mappings: [...]` or a bare list). Errors say file:line."""
    from vj.preset import parse_mappings_file

    return parse_mappings_file(Path(path), registry)


def mapping_to_dict(m: Mapping) -> dict:
    """The YAML form: `{cc: 16, param: x, ...}` with only non-default fields."""
    d: dict = {m.kind: True if m.kind == "pitchbend" else m.number, "param": m.param}
    if m.channel is not None:
        d["channel"] = m.channel + 1  # files count channels 1–16, like controllers do
    if m.range is not None:
        d["range"] = [float(m.range[0]), float(m.range[1])]
    if m.curve != "linear":
        d["curve"] = m.curve
    if m.invert:
        d["invert"] = True
    if m.kind in ("note", "program", "cc") and m.note_mode != "momentary":
        d["mode"] = m.note_mode
    if m.soft_takeover:
        d["soft_takeover"] = True
    if not m.feedback:
        d["feedback"] = False
    return d


def save_mappings(path: str | Path, mappings: Iterable[Mapping]) -> None:
    """Write atomically (temp + os.replace); the previous file is kept as `<name>.bak`.

    A previous file that does not parse is never overwritten: it raises PresetError instead.
    """
    path = Path(path)
    if path.exists():
        load_mappings(path)  # refuses to clobber a broken (probably hand-edited) file
    text = "# vj MIDI mappings (written by vj; safe to edit)\nmappings:\n"
    for m in mappings:
        text += "  - " + yaml.safe_dump(
            mapping_to_dict(m), default_flow_style=True, sort_keys=False
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():  # keep the previous file as .bak (itself written atomically)
        with atomic_path(path.with_name(path.name + ".bak")) as bak_tmp:
            shutil.copy2(path, bak_tmp)
    atomic_write_bytes(path, text.encode("utf-8"))
