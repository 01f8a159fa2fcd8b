"""Task progress from the pipeline's step callbacks, weighted with the other stages; ETA from measured times.

Work is counted in *step equivalents*: per segment, text/image encoding counts ``ENCODE_WEIGHT``, each denoising
step 1, the VAE decode ``DECODE_FRACTION`` × steps (at least 1); the MP4 encode (and mux) at the end counts
``MUX_WEIGHT``. ``percent`` never goes backwards and stays ≤ 99 until the upload is done.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

ENCODE_WEIGHT = 1.0
DECODE_FRACTION = 0.2
MUX_WEIGHT = 1.0
MAX_ETA = 86_400


class ProgressTracker:
    """Thread-safe: the pipeline thread reports, the heartbeat loop reads."""

    def __init__(self, steps_per_segment: Sequence[int], prior_seconds_per_unit: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._steps = list(steps_per_segment)
        self._bases: list[float] = []
        total = 0.0
        for steps in self._steps:
            self._bases.append(total)
            total += self._segment_units(steps)
        self._mux_base = total
        self._total = total + MUX_WEIGHT
        self._done = 0.0
        self._last_percent = 0
        self._prior = prior_seconds_per_unit
        self._started = clock()
        self._steps_seen = 0

    @staticmethod
    def _segment_units(steps: int) -> float:
        return ENCODE_WEIGHT + steps + max(1.0, DECODE_FRACTION * steps)

    def _advance(self, done: float) -> None:
        with self._lock:
            self._done = max(self._done, min(done, self._total))

    def step_done(self, segment: int, step: int) -> None:
        """Denoising step ``step`` (0-based) of ``segment`` finished (encoding is then done too)."""
        with self._lock:
            self._steps_seen += 1
        self._advance(self._bases[segment] + ENCODE_WEIGHT + step + 1)

    def segment_done(self, segment: int) -> None:
        """``segment``'s frames are decoded."""
        self._advance(self._bases[segment] + self._segment_units(self._steps[segment]))

    def encoded(self) -> None:
        """The MP4 is written (and muxed)."""
        self._advance(self._total)

    @property
    def steps_seen(self) -> int:
        with self._lock:
            return self._steps_seen

    def seconds_per_unit(self) -> float:
        """Measured seconds per step equivalent so far (the prior until something was done)."""
        with self._lock:
            if self._done <= 0:
                return self._prior
            return (self._clock() - self._started) / self._done

    def percent(self) -> int:
        """0…99, never lower than a value returned before."""
        with self._lock:
            p = int(99 * self._done / self._total) if self._total > 0 else 0
            self._last_percent = max(self._last_percent, min(99, p))
            return self._last_percent

    def eta_seconds(self) -> int:
        """Seconds left, 0…86400, from measured time per step equivalent."""
        rate = self.seconds_per_unit()
        with self._lock:
            remaining = self._total - self._done
        return int(min(MAX_ETA, max(0.0, remaining * rate)))
