"""Request → pipeline arguments: pure functions, no torch, no I/O (documented in docs/engines.md).

Frames: the clip has exactly ``duration × model fps`` frames (the model's own rate, not the node's 24-fps
``frame_count``). A pipeline call (a *segment*) makes a valid count of frames (``frame_step × k + 1``) of at most the
model's native length; extra frames at the end are trimmed. Longer clips and ``multi_prompt`` shots are chains of
segments, each conditioned on the previous segment's last frame, whose duplicate first frame is dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from kinema_diffusers.families import END_IMAGE, MULTI_PROMPT, ModelFamily
from kinema_diffusers.protocol import TaskRequest

MAX_SEED = 2**32 - 1


class UnsupportedRequest(Exception):
    """The request asks for something this model cannot honour; another attempt cannot fix it."""


@dataclass(frozen=True)
class FrameRule:
    """The frame and size rules of the loaded model (from its VAE and transformer, or the family's defaults)."""

    fps: int
    frame_step: int
    native_max_frames: int
    size_multiple: int


@dataclass(frozen=True)
class Segment:
    """One pipeline call of a clip."""

    index: int  # 0-based position in the clip
    shot: int  # 1-based shot number (1 without multi_prompt)
    prompt: str
    generate_frames: int  # a valid count for the model, passed as num_frames
    keep_frames: int  # new frames this segment adds to the clip
    drop_first: bool  # the first generated frame repeats the previous segment's last frame
    use_end_image: bool
    seed: int


def frames_for(duration_seconds: float, fps: int) -> int:
    """Frames in ``duration_seconds`` at ``fps`` (rounded to the nearest frame, at least 1)."""
    return max(1, round(duration_seconds * fps))


def valid_frame_count(needed: int, frame_step: int) -> int:
    """The smallest count ``frame_step × k + 1`` (k ≥ 1) that is ≥ ``needed``."""
    k = max(1, math.ceil((needed - 1) / frame_step))
    return frame_step * k + 1


def largest_valid_at_most(limit: int, frame_step: int) -> int:
    """The largest count ``frame_step × k + 1`` (k ≥ 1) that is ≤ ``limit``."""
    k = max(1, (limit - 1) // frame_step)
    return frame_step * k + 1


def guidance_scale(cfg_scale: float, family: ModelFamily, distilled: bool = False) -> float:
    """``g = g_min + cfg_scale × (g_max − g_min)``; a distilled checkpoint always runs at 1 (no CFG)."""
    if distilled:
        return 1.0
    c = min(1.0, max(0.0, cfg_scale))
    return round(family.guidance_min + c * (family.guidance_max - family.guidance_min), 4)


def segment_seed(seed: int, index: int) -> int:
    """Segment ``index``'s generator seed: ``seed + index`` modulo 2^32."""
    return (seed + index) % (MAX_SEED + 1)


def output_size(image_width: int, image_height: int, multiple: int, target_area: int,
                max_area: int | None = None) -> tuple[int, int]:
    """(width, height) following the image's aspect, with at most ``min(target_area, max_area)`` pixels.

    Both sides are multiples of ``multiple`` (rounded down, at least one multiple).
    """
    if image_width <= 0 or image_height <= 0:
        raise ValueError("image sides must be positive")
    area = target_area if max_area is None else min(target_area, max_area)
    aspect = image_width / image_height
    w = math.sqrt(area * aspect)
    h = w / aspect
    width = max(multiple, int((w + 1e-6) // multiple) * multiple)
    height = max(multiple, int((h + 1e-6) // multiple) * multiple)
    return width, height


def check_supported(request: TaskRequest, family: ModelFamily, rule: FrameRule) -> None:
    """Raises ``UnsupportedRequest`` with a readable reason when the model cannot honour the request."""
    if request.has_end_image and not family.supports_end_image:
        raise UnsupportedRequest(
            f"this worker's model ({family.name}) cannot condition on a last frame, so it cannot honour end_image; "
            "route end_image tasks to a Wan FLF2V or LTX-Video worker")
    if request.multi_prompt is None and request.prompt is None:
        raise UnsupportedRequest("the request has neither a prompt nor multi_prompt")
    if family.requires_end_image:
        if not request.has_end_image:
            raise UnsupportedRequest(
                f"this worker's model ({family.name}, Wan 2.1 FLF2V layout) only generates between a first and a "
                "last frame; the task has no end_image")
        if frames_for(request.duration, rule.fps) > rule.native_max_frames:
            raise UnsupportedRequest(
                f"this worker's model ({family.name}) needs a last frame for every segment and makes at most "
                f"{rule.native_max_frames} frames ({rule.native_max_frames / rule.fps:.1f} s) in one; "
                f"{request.duration} s would need several")
    if request.multi_prompt is not None and MULTI_PROMPT not in family.capabilities:
        raise UnsupportedRequest(f"this worker's model ({family.name}) cannot honour multi_prompt")
    if request.has_end_image and END_IMAGE not in family.capabilities:
        raise UnsupportedRequest(f"this worker's model ({family.name}) cannot honour end_image")


def _split(needed: int, first_cap: int, rest_cap: int) -> list[int]:
    """Splits ``needed`` new frames over the fewest segments, as evenly as the caps allow."""
    if needed <= first_cap:
        return [needed]
    k = 1 + math.ceil((needed - first_cap) / rest_cap)
    parts: list[int] = []
    remaining = needed
    for i in range(k):
        cap = first_cap if i == 0 else rest_cap
        part = min(cap, math.ceil(remaining / (k - i)))
        parts.append(part)
        remaining -= part
    assert remaining == 0
    return parts


def plan_segments(request: TaskRequest, rule: FrameRule, default_prompt: str = "") -> list[Segment]:
    """The segment chain for ``request``: one chain per shot, continuous across shots.

    The first segment of the clip adds all the frames it keeps; every later one is conditioned on the previous
    segment's last frame, so its first frame is a repeat and is dropped. Each segment generates the smallest valid
    count covering what it keeps (plus the repeat), and the surplus at its end is trimmed. Only the clip's last
    segment gets the end image.
    """
    shots = list(request.multi_prompt) if request.multi_prompt is not None else []
    if not shots:
        prompt = request.prompt if request.prompt is not None else default_prompt
        shot_frames = [(prompt, frames_for(request.duration, rule.fps))]
    else:
        shot_frames = [(s.prompt, frames_for(s.duration, rule.fps)) for s in shots]

    max_gen = largest_valid_at_most(rule.native_max_frames, rule.frame_step)
    segments: list[Segment] = []
    for shot_number, (prompt, needed) in enumerate(shot_frames, start=1):
        first_in_clip = not segments
        parts = _split(needed, max_gen if first_in_clip else max_gen - 1, max_gen - 1)
        for part in parts:
            index = len(segments)
            drop_first = index > 0
            generate = valid_frame_count(part + (1 if drop_first else 0), rule.frame_step)
            segments.append(Segment(
                index=index,
                shot=shot_number,
                prompt=prompt,
                generate_frames=generate,
                keep_frames=part,
                drop_first=drop_first,
                use_end_image=False,
                seed=segment_seed(request.seed, index),
            ))
    if request.has_end_image:
        last = segments[-1]
        segments[-1] = Segment(**{**last.__dict__, "use_end_image": True})
    return segments


def kept_indices(segment: Segment) -> list[int]:
    """Which of the segment's generated frames go into the clip, in order.

    The repeated first frame of a follow-on segment is dropped. The surplus (fewer than ``frame_step`` frames) is
    trimmed from the end, except in the segment conditioned on the end image, whose last frame *is* the end image:
    there the surplus frames are dropped evenly spaced from the interior instead.
    """
    start = 1 if segment.drop_first else 0
    candidates = list(range(start, segment.generate_frames))
    surplus = len(candidates) - segment.keep_frames
    if surplus <= 0:
        return candidates
    if not segment.use_end_image:
        return candidates[: segment.keep_frames]
    interior = candidates[1:-1] if len(candidates) > 2 else []
    if surplus > len(interior):
        # A very short segment: keep its first frames and its last (the end image).
        return [*candidates[: segment.keep_frames - 1], candidates[-1]]
    # Drop `surplus` interior frames at evenly spaced positions.
    step = len(interior) / surplus
    dropped = {interior[min(len(interior) - 1, int(step * (i + 0.5)))] for i in range(surplus)}
    return [i for i in candidates if i not in dropped]


def total_frames(segments: list[Segment]) -> int:
    """Frames in the finished clip."""
    return sum(s.keep_frames for s in segments)
