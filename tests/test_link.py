"""Ableton Link through aalink: a lone peer, two peers sharing tempo and bar phase, no package."""

from __future__ import annotations

import time

import pytest

from tests.waiting import wait_for
from vj.clock import now_ns
from vj.control.link import LinkTempo, LinkUnavailable, link_available

needs_aalink = pytest.mark.skipif(not link_available(), reason="aalink not installed")


def test_not_started_is_inactive_and_off():
    link = LinkTempo()
    assert link.state(now_ns()) is None and link.status() == "off" and link.num_peers == 0
    link.set_tempo(130.0)  # ignored, no error
    link.stop()  # stopping a never-started source is fine


def test_bad_arguments():
    with pytest.raises(ValueError, match="bpm"):
        LinkTempo(bpm=5.0)
    with pytest.raises(ValueError, match="beats_per_bar"):
        LinkTempo(beats_per_bar=0)


def test_missing_package_gives_install_hint(monkeypatch):
    import importlib

    real = importlib.import_module

    def fake(name, *a, **k):
        if name == "aalink":
            raise ImportError("No module named 'aalink'")
        return real(name, *a, **k)

    monkeypatch.setattr(importlib, "import_module", fake)
    with pytest.raises(LinkUnavailable, match="pip install aalink"):
        LinkTempo().start()


@needs_aalink
def test_lone_peer_runs_its_own_tempo_when_peers_not_required():
    with LinkTempo(bpm=100.0, require_peers=False) as link:
        assert link.status() in ("alone",) or link.num_peers > 0
        s1 = link.state(now_ns())
        assert s1 is not None and s1.bpm == pytest.approx(100.0)
        time.sleep(0.3)
        s2 = link.state(now_ns())
        advanced = (s2.beat_count + s2.beat_phase) - (s1.beat_count + s1.beat_phase)
        assert advanced == pytest.approx(0.5, abs=0.05)  # 0.3 s at 100 BPM
        # asking about a later time extrapolates along the session timeline
        t = now_ns()
        a, b = link.state(t), link.state(t + 600_000_000)
        assert (b.beat_count + b.beat_phase) - (a.beat_count + a.beat_phase) == pytest.approx(
            1.0, abs=1e-3
        )
        assert 0.0 <= a.bar_position < 4.0
        link.set_tempo(128.0)
        assert wait_for(lambda: link.state(now_ns()).bpm == pytest.approx(128.0, abs=0.01))


@needs_aalink
def test_two_peers_share_tempo_and_bar_phase():
    a = LinkTempo(bpm=120.0)
    b = LinkTempo(bpm=90.0)
    a.start()
    b.start()
    try:
        if not wait_for(lambda: a.num_peers > 0 and b.num_peers > 0, 5.0):
            pytest.skip("Link peers cannot see each other here (no multicast on this network)")
        assert a.status() == "1 peer"
        b.set_tempo(133.0)
        assert wait_for(lambda: abs(a.tempo - 133.0) < 0.01)
        t = now_ns()
        sa, sb = a.state(t), b.state(t)
        assert sa is not None and sb is not None
        assert sa.bpm == pytest.approx(133.0, abs=0.01)
        assert sa.bar_position == pytest.approx(sb.bar_position, abs=0.02)
    finally:
        b.stop()
        a.stop()
    assert a.state(now_ns()) is None
