"""Fragmented MP4 for live recordings: the playable prefix of a file that was cut short.

A live recording is written as `moov` (the track headers, once) followed by one `moof` +
`mdat` pair per second. Every complete pair is playable without the end of the file, so when
the disk fills or the encoder fails the file is cut back to its last complete fragment (a
truncation needs no free space) instead of being lost.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

# mp4 muxer options: moov written with the first fragment (so it holds the real frame rate),
# a fragment every second whatever the keyframe interval, offsets relative to each moof, and
# each fragment handed to the OS when written (else seconds of it wait in FFmpeg's buffers,
# lost to a SIGKILL or power cut)
FRAGMENTED = {
    "movflags": "delay_moov+default_base_moof",
    "frag_duration": "1000000",
    "flush_packets": "1",
}


def playable_prefix(path: str | os.PathLike) -> int:
    """Bytes of `path` that form a playable fragmented MP4: up to the last complete `mdat`
    after a `moov`, or the whole file when every box in it is complete; 0 when none."""
    size = os.path.getsize(path)
    pos, seen_moov, cut = 0, False, 0
    with open(path, "rb") as f:
        while pos + 8 <= size:
            f.seek(pos)
            n, kind = struct.unpack(">I4s", f.read(8))
            if n == 1:  # 64-bit size follows the type
                if pos + 16 > size:
                    break
                (n,) = struct.unpack(">Q", f.read(8))
            if n < 8 or pos + n > size:
                break  # size 0 ("to the end") or a box cut short: not complete
            pos += n
            if kind == b"moov":
                seen_moov = True
            elif kind == b"mdat" and seen_moov:
                cut = pos
        if seen_moov and pos == size:
            cut = size  # a file whose trailer was written: all of it
    return cut


def keep_playable_prefix(tmp: Path, path: Path) -> Path | None:
    """Cut `tmp` to its playable prefix and move it to `path` (returned); None (and `tmp`
    removed) when nothing in it is playable. Raises OSError when the move fails."""
    try:
        cut = playable_prefix(tmp)
    except OSError:
        cut = 0
    if cut == 0:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        return None
    os.truncate(tmp, cut)
    os.replace(tmp, path)
    return path
