"""Audio capture in a child process, so a lost audio server can never hang the show.

When the JACK server dies (or a USB interface is unplugged), PortAudio's stream calls block
for minutes (`pa_jack.c` waits ~10 min in CleanUpStream, then aborts) and its library cannot
be re-initialised in the same process. The stream therefore lives in a child: it sends each
block over a pipe, exits when its stream stops, and the parent can always kill it and start a
fresh one (with a fresh PortAudio that sees the restarted server).

Pipe protocol, child -> parent: frames of HEADER (tag, value, payload length) + payload.
  HELO  value 0, payload JSON {name, sample_rate, channels}: the stream is running
  BLK0/BLK1  value t_end_ns, payload float32 [frames, channels]; BLK1: t_end from the ADC time
  OVR   value the input-overflow count so far
  ERR   payload a UTF-8 message: could not open, or the stream stopped (then the child exits)
"""

from __future__ import annotations

import json
import os
import struct
import sys
import threading
import time

HEADER = struct.Struct("<4sqI")
STALL_S = 0.5  # no callback for this long: the stream is dead


def main(argv: list[str]) -> int:
    """Child entry: argv = [device_name, device_index, sample_rate, block_size, channels]."""
    name = argv[0]
    index, sr, block, channels = (int(v) for v in argv[1:5])
    out = os.dup(1)
    os.dup2(2, 1)  # stray prints (PortAudio, JACK) must not corrupt the pipe
    lock = threading.Lock()

    def send(tag: bytes, value: int = 0, payload: bytes = b"") -> None:
        with lock:
            os.write(out, HEADER.pack(tag, value, len(payload)) + payload)

    parent = os.getppid()
    try:
        import sounddevice as sd

        from vj.clock import now_ns

        inputs = [(i, d) for i, d in enumerate(sd.query_devices()) if d["max_input_channels"] > 0]
        # by name first: after a server restart the same device may have another index
        hit = next((i for i, d in inputs if d["name"] == name), None)
        if hit is None:
            hit = next((i for i, d in inputs if i == index), None)
        if hit is None:
            send(b"ERR ", 0, f"audio input {name!r} is not there".encode())
            return 2
        state = {"callbacks": 0, "overruns": 0}

        def callback(indata, frames, time_info, status) -> None:
            t_enter = now_ns()
            state["callbacks"] += 1
            if status.input_overflow:
                state["overruns"] += 1
                send(b"OVR ", state["overruns"])
            t_end, tag = t_enter, b"BLK0"
            adc, cur = time_info.inputBufferAdcTime, time_info.currentTime
            if adc > 0 and cur > 0 and 0 <= cur - adc < 1.0:
                # adc is the first sample's capture; the block ends frames-1 samples later
                t_end = t_enter - int((cur - adc) * 1e9) + int((frames - 1) * 1e9 / sr)
                tag = b"BLK1"
            send(tag, min(t_end, t_enter), indata.tobytes())

        stream = sd.InputStream(
            device=hit, channels=channels, samplerate=sr, blocksize=block, dtype="float32",
            callback=callback, latency="low",
        )  # fmt: skip
        stream.start()
    except Exception as exc:  # PortAudioError and friends: report, the parent decides
        send(b"ERR ", 0, str(exc).encode(errors="replace"))
        return 2
    send(b"HELO", 0, json.dumps({"name": name, "sample_rate": sr, "channels": channels}).encode())
    seen, t_seen = 0, time.monotonic()
    try:
        while os.getppid() == parent:
            time.sleep(0.05)
            n = state["callbacks"]
            if n != seen:
                seen, t_seen = n, time.monotonic()
            elif not stream.active or time.monotonic() - t_seen > STALL_S:
                send(b"ERR ", 0, b"the audio stream stopped (server gone or device unplugged)")
                break
    except (BrokenPipeError, OSError):
        pass  # the parent went away
    os._exit(3)  # never stop/close a dead stream: that is what blocks for minutes


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
