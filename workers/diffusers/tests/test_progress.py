"""Progress is monotone, weighted across stages, ≤ 99 until the upload; ETA is a bounded integer."""

from __future__ import annotations

from kinema_diffusers.progress import MAX_ETA, ProgressTracker


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_is_monotone_and_stays_below_100() -> None:
    clock = FakeClock()
    p = ProgressTracker([10, 10], clock=clock)
    seen = [p.percent()]
    for seg in range(2):
        for step in range(10):
            clock.now += 1
            p.step_done(seg, step)
            seen.append(p.percent())
        p.segment_done(seg)
        seen.append(p.percent())
    # A late or repeated report never moves it back.
    p.step_done(0, 3)
    seen.append(p.percent())
    p.encoded()
    seen.append(p.percent())
    assert seen == sorted(seen)
    assert seen[0] == 0 and seen[-1] == 99
    assert all(0 <= s <= 99 for s in seen)


def test_stages_are_weighted() -> None:
    p = ProgressTracker([10])
    p.step_done(0, 9)  # all steps, before the VAE decode
    before_decode = p.percent()
    p.segment_done(0)
    assert 70 <= before_decode < p.percent() < 99


def test_eta_comes_from_measured_time_and_is_bounded() -> None:
    clock = FakeClock()
    p = ProgressTracker([10], prior_seconds_per_unit=2.0, clock=clock)
    assert p.eta_seconds() == int(p._total * 2.0)  # before any step: the prior
    clock.now = 5.0
    p.step_done(0, 3)  # 1 (encode) + 4 steps = 5 units in 5 s
    assert p.eta_seconds() == int(p._total - 5)
    slow = ProgressTracker([10], prior_seconds_per_unit=1e9)
    assert slow.eta_seconds() == MAX_ETA
