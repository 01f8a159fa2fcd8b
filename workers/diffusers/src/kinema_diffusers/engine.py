"""The loaded model behind a narrow seam: ``Engine.load`` once at start, ``Engine.render`` per task.

Rendering runs the segment chain of ``mapping.plan_segments`` through the family's diffusers pipeline, each segment
conditioned on the previous one's last kept frame. Progress and cancellation go through the step callback: a set
``cancel`` event raises ``Cancelled`` from the callback, so the pipeline stops after the step that is running
(``pipe._interrupt`` would skip the remaining steps but still run the VAE decode).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from kinema_diffusers.families import LTX, ModelDirError, ModelFamily, detect_family
from kinema_diffusers.inputs import fit_image
from kinema_diffusers.mapping import (
    FrameRule,
    Segment,
    check_supported,
    guidance_scale,
    kept_indices,
    output_size,
    plan_segments,
)
from kinema_diffusers.protocol import TaskRequest
from kinema_diffusers.video import Frame

log = logging.getLogger("kinema_diffusers.engine")

StepObserver = Callable[[int, int], None]  # (segment index, 0-based step)
SegmentObserver = Callable[[int], None]


class Cancelled(Exception):
    """Rendering stopped because the task's lease was lost or the worker is shutting down."""


@dataclass(frozen=True)
class EngineOptions:
    """How the model runs (from the command line or the environment)."""

    device: str = "cpu"
    steps: int | None = None  # None: the family's default
    offload: bool = False  # model CPU offload (accelerate): fits big models on small GPUs, slower
    compile: bool = False  # torch.compile the transformer(s)
    distilled: bool = False  # a few-step checkpoint that wants guidance 1: cfg_scale is ignored
    max_area: int | None = None  # cap on output width × height (the family's 720p class otherwise)
    max_segment_frames: int | None = None  # cap on frames per pipeline call (memory), below the native length
    vae_tiling: bool | None = None  # None: on for CUDA
    threads: int | None = None  # torch CPU threads


@dataclass
class StageTimes:
    """Seconds per stage of the last render (for `bench` and the logs)."""

    encode: float = 0.0  # text and image encoding (time to the first step, less one step)
    steps: list[float] = field(default_factory=list)
    decode: float = 0.0  # VAE decode and post-processing (after the last step)
    total: float = 0.0


@dataclass
class RenderResult:
    frames: list[Frame]
    width: int
    height: int
    fps: int
    segments: list[Segment]
    times: StageTimes


def _dtype_for(device: str) -> torch.dtype:
    return torch.bfloat16 if device.startswith("cuda") else torch.float32


class Engine:
    """A loaded pipeline of one family and the rules read from it."""

    def __init__(self, pipe: Any, family: ModelFamily, rule: FrameRule, options: EngineOptions,
                 model_name: str) -> None:
        self.pipe = pipe
        self.family = family
        self.rule = rule
        self.options = options
        self.model_name = model_name
        self.steps = options.steps or family.default_steps
        offloaded = options.offload and options.device.startswith("cuda")
        self._generator_device = options.device if options.device.startswith("cuda") and not offloaded else "cpu"

    @property
    def capabilities(self) -> tuple[str, ...]:
        return self.family.capabilities

    @staticmethod
    def load(model_dir: Path, options: EngineOptions, model_name: str | None = None) -> Engine:
        """Loads the model in ``model_dir`` (offline) onto ``options.device``; raises ModelDirError."""
        import diffusers  # deferred: importing diffusers costs seconds

        if options.threads:
            torch.set_num_threads(options.threads)
        family = detect_family(model_dir)
        cls = getattr(diffusers, family.pipeline_class)
        dtype = _dtype_for(options.device)
        torch_dtype: Any = dtype
        if family.name.startswith("wan"):
            # The Wan model cards keep the VAE in float32 (bf16 decoding shows banding).
            torch_dtype = {"default": dtype, "vae": torch.float32}
        try:
            pipe = cls.from_pretrained(str(model_dir), dtype=torch_dtype, local_files_only=True)
        except Exception as e:  # whatever a broken directory raises, start-up names the directory and the cause
            raise ModelDirError(f"could not load the {family.name} model from {model_dir}: "
                                f"{type(e).__name__}: {str(e)[:400]}") from e
        pipe.set_progress_bar_config(disable=True)
        if options.offload and not options.device.startswith("cuda"):
            log.warning("--offload needs a CUDA device; running on %s without it", options.device)
        if options.offload and options.device.startswith("cuda"):
            pipe.enable_model_cpu_offload(device=options.device)
        else:
            pipe.to(options.device)
        tiling = options.vae_tiling if options.vae_tiling is not None else options.device.startswith("cuda")
        if tiling and hasattr(pipe.vae, "enable_tiling"):
            pipe.vae.enable_tiling()
        if options.compile:
            for name in ("transformer", "transformer_2"):
                module = getattr(pipe, name, None)
                if module is not None:
                    module.compile()
        rule = _frame_rule(pipe, family, options.max_segment_frames)
        return Engine(pipe, family, rule, options, claim_model_name(model_name or model_dir.resolve().name))

    def plan(self, request: TaskRequest) -> list[Segment]:
        """The segment chain for ``request``; raises UnsupportedRequest when the model cannot honour it."""
        check_supported(request, self.family, self.rule)
        return plan_segments(request, self.rule)

    def output_size(self, image: Image.Image) -> tuple[int, int]:
        return output_size(image.width, image.height, self.rule.size_multiple, self.family.target_area,
                           self.options.max_area)

    def warm_up(self) -> float:
        """One smallest clip through the whole pipeline (allocations, kernels, compile); returns its seconds."""
        started = time.monotonic()
        side = self.rule.size_multiple * 2
        image = Image.new("RGB", (side, side), (128, 128, 128))
        seg = Segment(index=0, shot=1, prompt="warm-up", generate_frames=self.rule.frame_step + 1,
                      keep_frames=self.rule.frame_step + 1, drop_first=False,
                      use_end_image=self.family.requires_end_image, seed=0)
        self._call(seg, image, image if seg.use_end_image else None, side, side, None,
                   guidance=guidance_scale(0.5, self.family, self.options.distilled), steps=1,
                   callback=lambda s, i, t, kw: kw)
        return time.monotonic() - started

    def render(self, request: TaskRequest, image: Image.Image, end_image: Image.Image | None,
               segments: list[Segment], cancel: threading.Event,
               on_step: StepObserver | None = None, on_segment: SegmentObserver | None = None) -> RenderResult:
        """Runs the segment chain; raises Cancelled when ``cancel`` is set (checked after every step)."""
        width, height = self.output_size(image)
        first = fit_image(image, width, height)
        last = fit_image(end_image, width, height) if end_image is not None else None
        negative = request.negative_prompt or self.family.default_negative_prompt
        guidance = guidance_scale(request.cfg_scale, self.family, self.options.distilled)
        times = StageTimes()
        started = time.monotonic()
        frames: list[Frame] = []
        condition = first
        for seg in segments:
            if cancel.is_set():
                raise Cancelled()
            if seg.use_end_image and last is None:
                raise ValueError("segment wants the end image but none was given")
            log.info('segment %d/%d shot=%d frames=%d keep=%d seed=%d guidance=%g prompt="%s"',
                     seg.index + 1, len(segments), seg.shot, seg.generate_frames, seg.keep_frames, seg.seed,
                     guidance, _short(seg.prompt))
            step_marks: list[float] = []
            seg_start = time.monotonic()

            def callback(pipe: Any, i: int, t: Any, kwargs: dict[str, Any],
                         seg: Segment = seg, marks: list[float] = step_marks) -> dict[str, Any]:
                marks.append(time.monotonic())
                if on_step is not None:
                    on_step(seg.index, i)
                if cancel.is_set():
                    raise Cancelled()
                return kwargs

            generator = torch.Generator(device=self._generator_device).manual_seed(seg.seed)
            video = self._call(seg, condition, last if seg.use_end_image else None, width, height, generator,
                               guidance=guidance, steps=self.steps, callback=callback, negative=negative)
            seg_end = time.monotonic()
            _account(times, seg_start, step_marks, seg_end)
            for i in kept_indices(seg):
                frames.append(video[i])
            condition = Image.fromarray(frames[-1])
            if on_segment is not None:
                on_segment(seg.index)
        times.total = time.monotonic() - started
        return RenderResult(frames=frames, width=width, height=height, fps=self.rule.fps, segments=segments,
                            times=times)

    def _call(self, seg: Segment, image: Image.Image, last: Image.Image | None, width: int, height: int,
              generator: torch.Generator | None, guidance: float, steps: int,
              callback: Callable[[Any, int, Any, dict[str, Any]], dict[str, Any]],
              negative: str | None = None) -> np.ndarray[Any, np.dtype[np.uint8]]:
        """One pipeline call; returns (frames, height, width, 3) uint8."""
        common: dict[str, Any] = {
            "prompt": seg.prompt,
            "negative_prompt": negative if negative is not None else self.family.default_negative_prompt,
            "height": height,
            "width": width,
            "num_frames": seg.generate_frames,
            "num_inference_steps": steps,
            "guidance_scale": guidance,
            "generator": generator,
            "output_type": "np",
            "callback_on_step_end": callback,
        }
        with torch.inference_mode():
            if self.family.name == LTX.name:
                from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition

                conditions = [LTXVideoCondition(image=image, frame_index=0)]
                if last is not None:
                    conditions.append(LTXVideoCondition(image=last, frame_index=seg.generate_frames - 1))
                out = self.pipe(conditions=conditions, frame_rate=self.rule.fps, **common)
            else:
                if last is not None:
                    common["last_image"] = last
                out = self.pipe(image=image, **common)
        video = np.asarray(out.frames[0], dtype=np.float32)
        if video.shape[0] != seg.generate_frames:
            raise RuntimeError(f"the pipeline made {video.shape[0]} frames, {seg.generate_frames} were asked for")
        result: np.ndarray[Any, np.dtype[np.uint8]] = (np.clip(video, 0.0, 1.0) * 255.0).round().astype(np.uint8)
        return result


def _frame_rule(pipe: Any, family: ModelFamily, max_segment_frames: int | None) -> FrameRule:
    """The loaded model's own frame and size rules (VAE compression × transformer patch)."""
    transformer: Any = pipe.transformer if pipe.transformer is not None else getattr(pipe, "transformer_2", None)
    if family.name == LTX.name:
        step = int(pipe.vae_temporal_compression_ratio)
        multiple = int(pipe.vae_spatial_compression_ratio) * int(pipe.transformer_spatial_patch_size)
    else:
        step = int(pipe.vae_scale_factor_temporal)
        multiple = int(pipe.vae_scale_factor_spatial) * int(transformer.config.patch_size[1])
    native = family.native_max_frames
    if max_segment_frames is not None:
        native = max(step + 1, min(native, max_segment_frames))
    return FrameRule(fps=family.fps, frame_step=step, native_max_frames=native, size_multiple=multiple)


def _account(times: StageTimes, seg_start: float, marks: list[float], seg_end: float) -> None:
    if not marks:
        times.total += seg_end - seg_start
        return
    steps = [marks[0] - seg_start] + [b - a for a, b in itertools.pairwise(marks)]
    mean_later = sum(steps[1:]) / (len(steps) - 1) if len(steps) > 1 else steps[0]
    # The first callback also covers encoding: count one typical step as the step, the rest as encoding.
    times.encode += max(0.0, steps[0] - mean_later)
    steps[0] = min(steps[0], mean_later)
    times.steps.extend(steps)
    times.decode += seg_end - marks[-1]


def claim_model_name(name: str) -> str:
    """``name`` as the claim's ``model`` accepts it: 1–200 printable ASCII characters."""
    cleaned = "".join(c for c in name if 0x20 <= ord(c) < 0x7F).strip()[:200]
    return cleaned or "model"


def _short(text: str, limit: int = 120) -> str:
    one_line = " ".join(text.split()).replace('"', "'")
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"


def is_out_of_memory(e: BaseException) -> bool:
    """Whether ``e`` is an accelerator out-of-memory error (retryable on a shared GPU)."""
    if isinstance(e, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(e, RuntimeError) and "out of memory" in str(e).lower()


def free_accelerator_memory() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


__all__ = ["Cancelled", "Engine", "EngineOptions", "ModelDirError", "RenderResult", "StageTimes",
           "free_accelerator_memory", "is_out_of_memory"]
