"""Outputs to other software: NDI, a Linux virtual camera, Spout/Syphon — each an optional extra.

`open_output(kind, ...)` returns a started `FrameSender` (its own thread, latest-value
hand-off: the render thread never waits on a sink) or raises `OutputUnavailable` with what
is missing and how to install it. `available(kind)` says the same without opening anything.
"""

from __future__ import annotations

from vj.render.outputs.sender import FrameSender, OutputUnavailable

KINDS = ("ndi", "vcam", "spout", "syphon")

__all__ = ["KINDS", "FrameSender", "OutputUnavailable", "available", "open_output"]


def _sink_factory(kind: str):
    if kind == "ndi":
        from vj.render.outputs.ndi import NdiSink

        return NdiSink
    if kind == "vcam":
        from vj.render.outputs.vcam import VcamSink

        return VcamSink
    if kind in ("spout", "syphon"):
        from vj.render.outputs.texshare import texture_share_sink

        return texture_share_sink(kind)
    raise OutputUnavailable(f"unknown output {kind!r}: allowed are {', '.join(KINDS)}")


def available(kind: str) -> str | None:
    """None when `kind` can be opened here, else the reason and the fix (one line)."""
    try:
        return _sink_factory(kind).unavailable()
    except OutputUnavailable as exc:
        return str(exc)


def open_output(kind: str, name: str, width: int, height: int, fps: float) -> FrameSender:
    """Open a sink and start its sender thread. Raises OutputUnavailable."""
    factory = _sink_factory(kind)
    why = factory.unavailable()
    if why is not None:
        raise OutputUnavailable(why)
    sink = factory(name, width, height, fps)
    return FrameSender(sink, width, height)
