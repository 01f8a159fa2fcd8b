"""The request → pipeline-arguments mapping (pure functions)."""

from __future__ import annotations

import pytest

from kinema_diffusers.families import LTX, WAN_FLF2V, WAN_TI2V, ModelFamily
from kinema_diffusers.mapping import (
    FrameRule,
    UnsupportedRequest,
    check_supported,
    frames_for,
    guidance_scale,
    kept_indices,
    output_size,
    plan_segments,
    segment_seed,
    total_frames,
    valid_frame_count,
)
from tests.helpers import request


def rule(family: ModelFamily, native: int | None = None) -> FrameRule:
    return FrameRule(fps=family.fps, frame_step=family.frame_step,
                     native_max_frames=native or family.native_max_frames, size_multiple=family.size_multiple)


def test_frame_count_is_duration_times_model_fps() -> None:
    assert frames_for(5, WAN_TI2V.fps) == 120
    assert frames_for(5, WAN_FLF2V.fps) == 80
    assert frames_for(3, LTX.fps) == 72


@pytest.mark.parametrize(("needed", "step", "expected"), [
    (1, 4, 5), (5, 4, 5), (6, 4, 9), (72, 4, 73), (73, 4, 73), (120, 4, 121), (80, 4, 81),
    (72, 8, 73), (74, 8, 81), (24, 8, 25), (2, 8, 9),
])
def test_valid_frame_count_is_smallest_step_k_plus_one(needed: int, step: int, expected: int) -> None:
    assert valid_frame_count(needed, step) == expected
    assert (expected - 1) % step == 0 and expected >= needed


@pytest.mark.parametrize("family", [WAN_TI2V, WAN_FLF2V, LTX])
@pytest.mark.parametrize("duration", [3, 5, 7, 10, 15])
def test_segments_add_up_to_exactly_duration_times_fps(family: ModelFamily, duration: int) -> None:
    r = rule(family)
    segments = plan_segments(request(duration=duration), r)
    assert total_frames(segments) == duration * family.fps
    for s in segments:
        assert (s.generate_frames - 1) % family.frame_step == 0
        assert s.generate_frames <= family.native_max_frames
        assert len(kept_indices(s)) == s.keep_frames
        assert s.drop_first == (s.index > 0)


def test_five_seconds_of_ti2v_is_one_segment_trimmed_by_one_frame() -> None:
    [s] = plan_segments(request(duration=5), rule(WAN_TI2V))
    assert (s.generate_frames, s.keep_frames) == (121, 120)
    assert kept_indices(s) == list(range(120))


def test_long_clip_is_chained_and_split_evenly() -> None:
    # 15 s of Wan 2.1 at 16 fps = 240 frames, 81 frames native: three segments of 80 new frames each (the first
    # trims its 81st frame, the others drop their repeated first frame).
    segments = plan_segments(request(duration=15), rule(WAN_FLF2V))
    assert [s.keep_frames for s in segments] == [80, 80, 80]
    assert [s.generate_frames for s in segments] == [81, 81, 81]
    assert kept_indices(segments[1])[0] == 1  # the repeated conditioning frame is dropped
    assert [s.seed for s in segments] == [7, 8, 9]


def test_multi_prompt_is_one_chain_per_shot_with_its_own_prompt() -> None:
    req = request(multi_prompt=[("wide shot of the harbour", 3), ("close on the boat", 5), ("pull out", 4)])
    segments = plan_segments(req, rule(WAN_TI2V))
    assert [(s.shot, s.prompt) for s in segments] == [
        (1, "wide shot of the harbour"), (2, "close on the boat"), (3, "pull out")]
    assert [s.keep_frames for s in segments] == [72, 120, 96]
    assert total_frames(segments) == 12 * 24
    assert [s.drop_first for s in segments] == [False, True, True]  # continuous across cuts


def test_long_shot_in_multi_prompt_gets_several_segments() -> None:
    req = request(multi_prompt=[("a", 3), ("b", 12)])
    segments = plan_segments(req, rule(WAN_FLF2V))
    assert [s.shot for s in segments] == [1, 2, 2, 2]
    assert sum(s.keep_frames for s in segments if s.shot == 2) == 12 * 16


def test_only_the_last_segment_gets_the_end_image_and_keeps_its_last_frame() -> None:
    segments = plan_segments(request(duration=10, has_end_image=True), rule(LTX, native=121))
    assert [s.use_end_image for s in segments] == [False] * (len(segments) - 1) + [True]
    last = segments[-1]
    kept = kept_indices(last)
    assert kept[-1] == last.generate_frames - 1  # the end image is the clip's last frame
    assert len(kept) == last.keep_frames
    assert kept == sorted(set(kept))


def test_end_image_segment_drops_surplus_from_the_interior() -> None:
    [s] = plan_segments(request(duration=5, has_end_image=True), rule(WAN_FLF2V))
    assert (s.generate_frames, s.keep_frames) == (81, 80)
    kept = kept_indices(s)
    assert kept[0] == 0 and kept[-1] == 80 and len(kept) == 80


@pytest.mark.parametrize(("cfg", "expected"), [(0.0, 1.0), (0.5, 5.0), (1.0, 9.0), (1.7, 9.0), (-1, 1.0)])
def test_guidance_maps_cfg_scale_linearly_onto_the_family_range(cfg: float, expected: float) -> None:
    assert guidance_scale(cfg, WAN_TI2V) == expected


def test_default_cfg_scale_gives_the_model_cards_default_guidance() -> None:
    assert guidance_scale(0.5, WAN_TI2V) == 5.0
    assert guidance_scale(0.5, WAN_FLF2V) == 5.5
    assert guidance_scale(0.5, LTX) == 3.0


def test_distilled_checkpoint_ignores_cfg_scale() -> None:
    assert guidance_scale(0.0, LTX, distilled=True) == 1.0
    assert guidance_scale(1.0, LTX, distilled=True) == 1.0


def test_seed_per_segment_wraps_at_2_to_the_32() -> None:
    assert segment_seed(5, 2) == 7
    assert segment_seed(2**32 - 1, 1) == 0


@pytest.mark.parametrize(("w", "h", "multiple", "max_area", "expected"), [
    (1920, 1080, 32, None, (1248, 704)),
    (1080, 1920, 32, None, (704, 1248)),
    (1920, 1080, 16, None, (1280, 720)),
    (400, 300, 32, 64 * 64, (64, 32)),
    (300, 300, 32, 64 * 64, (64, 64)),
    (600, 300, 32, 64 * 64, (64, 32)),
    (750, 300, 16, 64 * 64, (96, 32)),
])
def test_output_size_follows_aspect_within_area_on_the_multiple(
        w: int, h: int, multiple: int, max_area: int | None, expected: tuple[int, int]) -> None:
    target = 1280 * 704 if multiple == 32 else 1280 * 720
    assert output_size(w, h, multiple, target, max_area) == expected
    width, height = expected
    assert width % multiple == 0 and height % multiple == 0
    assert width * height <= (max_area or target)


def test_capabilities_per_family() -> None:
    assert WAN_TI2V.capabilities == ("multi_prompt", "sound")
    assert WAN_FLF2V.capabilities == ("end_image", "multi_prompt", "sound")
    assert LTX.capabilities == ("end_image", "multi_prompt", "sound")
    from dataclasses import replace

    assert replace(WAN_FLF2V, requires_end_image=True).capabilities == ("end_image", "sound")


def test_end_image_on_ti2v_is_refused() -> None:
    with pytest.raises(UnsupportedRequest, match="end_image"):
        check_supported(request(has_end_image=True), WAN_TI2V, rule(WAN_TI2V))


def test_flf2v_layout_needing_a_last_frame_refuses_what_it_cannot_do() -> None:
    from dataclasses import replace

    fam = replace(WAN_FLF2V, requires_end_image=True)
    check_supported(request(duration=5, has_end_image=True), fam, rule(fam))
    with pytest.raises(UnsupportedRequest, match="no end_image"):
        check_supported(request(duration=5), fam, rule(fam))
    with pytest.raises(UnsupportedRequest, match="several"):
        check_supported(request(duration=10, has_end_image=True), fam, rule(fam))
    with pytest.raises(UnsupportedRequest):
        check_supported(request(multi_prompt=[("a", 3)]), fam, rule(fam))
