"""Spout (Windows) and Syphon (macOS): GPU texture sharing. Only the availability check is built.

Both share a GL texture with other applications on their own platform and need the GL
context of the render thread; neither runs on Linux, where this project is developed and
tested, so no sender is implemented yet: opening one reports why.
"""

from __future__ import annotations

import sys

_INFO = {
    "spout": ("win32", "Windows", "SpoutGL", 'pip install -e ".[spout]"'),
    "syphon": ("darwin", "macOS", "syphon", 'pip install -e ".[syphon]"'),
}


def texture_share_sink(kind: str):
    platform, os_name, module, install = _INFO[kind]

    class _Unbuilt:
        @staticmethod
        def unavailable() -> str | None:
            if sys.platform != platform:
                return f"{kind} output exists only on {os_name} (this is {sys.platform}); use ndi"
            try:
                __import__(module)
            except ImportError as exc:
                return f"{kind} output needs {module} ({exc}): {install}"
            return f"{kind} output: the sender is not built yet in this version; use ndi"

    return _Unbuilt
