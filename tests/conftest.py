"""Shared fixtures: a JACK dummy server, GPU detection, temp dirs."""

from __future__ import annotations

import os

import pytest

from tests.jackutil import jack_server, jackd_available


def _has_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:
        return False


def pytest_collection_modifyitems(config, items):
    if _has_cuda():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        # the marker, not `"gpu" in item.keywords`: keywords hold the names of parent nodes
        # too, so a checkout in a folder called `gpu` would skip every test
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def jack_session():
    """One JACK dummy server (48 kHz, 256 frames) for the whole test session.

    Sets JACK_DEFAULT_SERVER for this process so sounddevice (PortAudio) and python-rtmidi
    clients find it; PortAudio is re-initialised so its JACK host API sees the server.
    """
    if not jackd_available():
        pytest.skip("jackd not installed (apt-get install jackd2)")
    with jack_server() as name:
        old = {k: os.environ.get(k) for k in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER")}
        os.environ["JACK_DEFAULT_SERVER"] = name
        os.environ["JACK_NO_START_SERVER"] = "1"
        _reinit_portaudio()
        try:
            yield name
        finally:
            _terminate_portaudio()  # PortAudio must let go before jackd stops
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def _reinit_portaudio() -> None:
    try:
        import sounddevice as sd
    except OSError:
        return
    sd._terminate()
    sd._initialize()


def _terminate_portaudio() -> None:
    # Terminate only: re-initialising here would leave PortAudio holding a client of a jackd
    # that is about to stop, and its exit-time assertion would abort the process.
    try:
        import sounddevice as sd
    except OSError:
        return
    sd._terminate()
