"""The real diffusers pipelines with tiny random weights, loaded back through from_pretrained(local_files_only)."""

from __future__ import annotations

import logging
import threading
from dataclasses import replace

import numpy as np
import pytest

from kinema_diffusers.engine import Cancelled, Engine
from kinema_diffusers.mapping import UnsupportedRequest
from tests.helpers import picture, request


def render(engine: Engine, seed: int = 7, end: bool = False, duration: int = 1,
           multi: list[tuple[str, int]] | None = None) -> list[np.ndarray]:
    req = request(seed=seed, has_end_image=end, duration=duration, multi_prompt=multi)
    segments = engine.plan(req)
    result = engine.render(req, picture(400, 300, 1), picture(400, 300, 2) if end else None, segments,
                           threading.Event())
    return result.frames


def test_ti2v_makes_duration_times_24_frames_at_the_capped_size(ti2v: Engine) -> None:
    assert (ti2v.family.name, ti2v.rule.fps, ti2v.rule.frame_step, ti2v.rule.size_multiple) == ("wan-ti2v", 24, 4, 32)
    frames = render(ti2v)
    assert len(frames) == 24
    assert frames[0].shape == (32, 64, 3) and frames[0].dtype == np.uint8  # 400×300 → 64×32 under 64×64


def test_same_seed_same_frames_other_seed_other_frames(ti2v: Engine) -> None:
    a = np.stack(render(ti2v, seed=11))
    b = np.stack(render(ti2v, seed=11))
    c = np.stack(render(ti2v, seed=12))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_ltx_is_deterministic_and_honours_the_end_image(ltx: Engine) -> None:
    assert (ltx.rule.fps, ltx.rule.frame_step, ltx.rule.size_multiple) == (24, 8, 32)
    with_end = np.stack(render(ltx, seed=3, end=True))
    again = np.stack(render(ltx, seed=3, end=True))
    without = np.stack(render(ltx, seed=3))
    assert with_end.shape == (24, 32, 64, 3)
    assert np.array_equal(with_end, again)
    assert not np.array_equal(with_end, without)  # the last-frame condition reaches the model


def test_flf2v_needs_and_uses_the_end_image(flf2v: Engine) -> None:
    assert (flf2v.rule.fps, flf2v.rule.size_multiple) == (16, 16)
    assert flf2v.capabilities == ("end_image", "sound")
    with pytest.raises(UnsupportedRequest, match="no end_image"):
        flf2v.plan(request())
    frames = render(flf2v, end=True)
    assert len(frames) == 16 and frames[0].shape == (48, 64, 3)  # 400×300 on a multiple of 16


def test_ti2v_refuses_end_image(ti2v: Engine) -> None:
    with pytest.raises(UnsupportedRequest, match="end_image"):
        ti2v.plan(request(has_end_image=True))


def test_long_clip_is_chained_in_segments_and_trimmed_exactly(ti2v: Engine,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    short = Engine(ti2v.pipe, ti2v.family, replace(ti2v.rule, native_max_frames=17), ti2v.options, "tiny")
    caplog.set_level(logging.INFO, logger="kinema_diffusers.engine")
    frames = render(short, duration=1)
    assert len(frames) == 24
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("segment ")]
    assert [line.split(" keep=")[0] for line in lines] == [
        "segment 1/2 shot=1 frames=13", "segment 2/2 shot=1 frames=13"]


def test_multi_prompt_makes_one_segment_per_shot_with_its_prompt(ti2v: Engine,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="kinema_diffusers.engine")
    shots = [("wide shot of the harbour", 1), ("close on the red boat", 1), ("slow pull out", 1)]
    frames = render(ti2v, multi=shots)
    assert len(frames) == 72
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("segment ")]
    assert len(lines) == 3
    for n, (line, (prompt, _)) in enumerate(zip(lines, shots, strict=True), start=1):
        assert line.startswith(f"segment {n}/3 shot={n} ")
        assert line.endswith(f'prompt="{prompt}"')


def test_cancel_stops_within_one_step(tiny_models: dict[str, object], ti2v: Engine) -> None:
    engine = Engine(ti2v.pipe, ti2v.family, ti2v.rule, replace(ti2v.options, steps=20), "tiny")
    cancel = threading.Event()
    steps: list[int] = []

    def on_step(segment: int, step: int) -> None:
        steps.append(step)
        if step == 2:
            cancel.set()

    req = request()
    with pytest.raises(Cancelled):
        engine.render(req, picture(), None, engine.plan(req), cancel, on_step=on_step)
    assert steps == [0, 1, 2]
