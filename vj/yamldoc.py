"""The strict YAML node walker behind every config file: composed nodes keep their lines, so
each error is `file:line: where: problem`, with "did you mean" for names.

Split out of vj/preset.py (structure only: no behaviour changed) so the show schema
(vj/show/config.py) and the preset loader share it without importing each other.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import yaml

from vj.hints import did_you_mean


class PresetError(ValueError):
    """A bad preset or mapping file: `file:line: where: problem`."""

    def __init__(self, path: str | Path | None, line: int | None, where: str, problem: str):
        self.path, self.line, self.where, self.problem = path, line, where, problem
        loc = str(path) if path is not None else "<preset>"
        if line is not None:
            loc += f":{line}"
        super().__init__(f"{loc}: {where}: {problem}" if where else f"{loc}: {problem}")


class _Doc:
    """Validation helpers over composed YAML nodes, remembering the file for messages."""

    def __init__(self, path: Path | str | None) -> None:
        self.path = path
        self._loader = yaml.SafeLoader("")
        self.warnings: list[str] = []  # problems that do not make the file unusable

    def err(self, node: yaml.Node | None, where: str, problem: str) -> PresetError:
        line = node.start_mark.line + 1 if node is not None else None
        return PresetError(self.path, line, where, problem)

    def value(self, node: yaml.Node) -> Any:
        try:
            return self._loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:  # e.g. a !!python/object tag: SafeLoader refuses it
            problem = getattr(exc, "problem", None) or str(exc)
            raise self.err(node, "value", f"cannot read this value: {problem}") from None

    def items(self, node: yaml.Node, where: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            raise self.err(
                node, where or "file", f"expected a mapping (key: value), got {_kind(node)}"
            )
        n_own = sum(1 for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge")
        self._loader.flatten_mapping(node)  # YAML merge keys (<<: *anchor) become plain keys
        n_merged = len(node.value) - n_own  # merged pairs come first; own keys override them
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        own: dict[str, yaml.Node] = {}
        for j, (k, v) in enumerate(node.value):
            key = self.value(k) if isinstance(k, yaml.ScalarNode) else None
            if not isinstance(key, str | int) or isinstance(key, bool):
                raise self.err(k, where or "file", "keys must be plain names")
            key = str(key)
            if j >= n_merged:
                if key in own:
                    first = own[key].start_mark.line + 1
                    raise self.err(k, _join(where, key), f"duplicate key (first on line {first})")
                own[key] = k
            out[key] = (k, v)
        return out

    def check_keys(self, items: dict, allowed: tuple[str, ...], where: str) -> None:
        for key, (knode, _) in items.items():
            if key not in allowed:
                hint = did_you_mean(key, allowed)
                raise self.err(
                    knode, _join(where, key), f"unknown key{hint}; allowed: {', '.join(allowed)}"
                )

    def seq(self, node: yaml.Node, where: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.err(node, where, f"expected a list, got {_kind(node)}")
        return list(node.value)

    def scalar(self, node: yaml.Node, where: str, types: tuple, what: str) -> Any:
        v = self.value(node) if isinstance(node, yaml.ScalarNode) else node
        ok = isinstance(v, types) and not (isinstance(v, bool) and bool not in types)
        if not ok:
            shown = repr(v) if isinstance(node, yaml.ScalarNode) else _kind(node)
            raise self.err(node, where, f"expected {what}, got {shown}")
        return v

    def power_of_two(self, node, where: str, lo: int, hi: int, none: bool = False) -> Any:
        v = self.number(node, where, lo, hi, integer=True, none=none)
        if v is not None and v & (v - 1):
            raise self.err(node, where, f"{v} is not a power of two ({lo}, {2 * lo}, …, {hi})")
        return v

    def number(self, node, where, lo=None, hi=None, integer=False, none=False) -> Any:
        types: tuple = (int,) if integer else (int, float)
        what = "an integer" if integer else "a number"
        if none:
            types += (type(None),)
            what += " or null"
        v = self.scalar(node, where, types + (str,), what)
        if isinstance(v, str):  # YAML 1.1 reads 1.0e9 (no sign) as a string; 1.2 as a number
            v = _exponent_float(v) if not integer else None
            if v is None:
                raise self.err(node, where, f"expected {what}, got {self.value(node)!r}")
        if v is None:
            return None
        if isinstance(v, float) and not math.isfinite(v):
            raise self.err(node, where, f"expected a finite number, got {v}")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise self.err(node, where, f"{v} out of range [{lo}, {hi}]")
        return v if integer else float(v)

    def boolean(self, node, where) -> bool:
        return self.scalar(node, where, (bool,), "true or false")

    def string(self, node, where, none=False) -> str | None:
        types: tuple = (str, type(None)) if none else (str,)
        return self.scalar(node, where, types, "a string" + (" or null" if none else ""))

    def choice(self, node, where, allowed: tuple[str, ...] | list[str]) -> str:
        v = self.value(node) if isinstance(node, yaml.ScalarNode) else None
        if v not in allowed:
            hint = did_you_mean(str(v), list(allowed))
            raise self.err(
                node, where, f"{v!r} is not allowed{hint}; allowed: {', '.join(allowed)}"
            )
        return v

    def regex(self, node, where) -> str:
        pat = self.string(node, where)
        try:
            re.compile(pat)
        except re.error as exc:
            raise self.err(node, where, f"bad regular expression {pat!r}: {exc}") from None
        return pat


def _exponent_float(text: str) -> float | None:
    """'1.0e9' -> 1e9, as YAML 1.2 reads it; None for any other string."""
    if re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+", text.strip()):
        return float(text)
    return None


def _join(where: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{where}[{key}]"
    return f"{where}.{key}" if where else key


def _kind(node: yaml.Node) -> str:
    return {yaml.MappingNode: "a mapping", yaml.SequenceNode: "a list"}.get(type(node), "a value")
