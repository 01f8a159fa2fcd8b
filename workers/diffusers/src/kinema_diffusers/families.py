"""Model families: which diffusers pipeline runs a model directory, and the rules that model imposes.

A family is detected from the directory's ``model_index.json`` (``_class_name`` and its registered config) and the
component configs. The numbers (fps, native length, guidance range, default negative prompt, steps) are the
published model cards' defaults; docs/engines.md documents where each comes from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

END_IMAGE = "end_image"
MULTI_PROMPT = "multi_prompt"
SOUND = "sound"

# Wan's recommended negative prompt, from the Wan 2.1 / 2.2 model cards and `generate.py` (kept in Chinese: the
# models were trained with it in this form). It lists: oversaturated, overexposed, static, blurry details, subtitles,
# style, artwork, painting, still picture, greyish, worst/low quality, JPEG artifacts, ugly, mutilated, extra
# fingers, badly drawn hands/faces, deformed, disfigured, malformed limbs, fused fingers, motionless frame, cluttered
# background, three legs, crowded background, walking backwards.
WAN_NEGATIVE_PROMPT = (
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，JPEG压缩残留，"
    "丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，静止不动的画面，"
    "杂乱的背景，三条腿，背景人很多，倒着走"
)
# LTX-Video's recommended negative prompt (model card and the diffusers LTX examples).
LTX_NEGATIVE_PROMPT = "worst quality, inconsistent motion, blurry, jittery, distorted"

# The "720p class": the output keeps the input's aspect ratio with at most this many pixels (1280 × 720).
AREA_720P = 1280 * 720


class ModelDirError(Exception):
    """The model directory cannot be used: missing, not a diffusers model, or of an unsupported kind."""


@dataclass(frozen=True)
class ModelFamily:
    """What a family of checkpoints needs and honours.

    ``frame_step`` and ``size_multiple`` are the family's published rules; the engine re-reads both from the loaded
    pipeline (VAE compression × transformer patch) and uses those, so a tiny test model follows the same code.
    """

    name: str
    pipeline_class: str
    fps: int
    frame_step: int  # valid frame counts are frame_step × k + 1
    native_max_frames: int  # the longest clip one pipeline call makes (a segment)
    size_multiple: int
    guidance_min: float
    guidance_max: float
    default_steps: int
    default_negative_prompt: str
    supports_end_image: bool
    # Wan 2.1 FLF2V's image embedder has position embeddings for exactly two images: every call needs a last frame.
    requires_end_image: bool = False
    target_area: int = AREA_720P

    @property
    def capabilities(self) -> tuple[str, ...]:
        """The optional request features this family honours, as sent in the claim's ``capabilities``."""
        caps: list[str] = []
        if self.supports_end_image:
            caps.append(END_IMAGE)
        if not self.requires_end_image:
            # One segment per shot needs segments without a last frame.
            caps.append(MULTI_PROMPT)
        caps.append(SOUND)
        return tuple(caps)


WAN_TI2V = ModelFamily(
    name="wan-ti2v",
    pipeline_class="WanImageToVideoPipeline",
    fps=24,
    frame_step=4,
    native_max_frames=121,
    size_multiple=32,
    guidance_min=1.0,
    guidance_max=9.0,  # cfg_scale 0.5 → 5.0, the model card's default
    default_steps=50,
    default_negative_prompt=WAN_NEGATIVE_PROMPT,
    supports_end_image=False,  # expand_timesteps ignores last_image: advertising it would silently degrade
    target_area=1280 * 704,  # the TI2V-5B's native 720p size
)

WAN_FLF2V = ModelFamily(
    name="wan-flf2v",
    pipeline_class="WanImageToVideoPipeline",
    fps=16,
    frame_step=4,
    native_max_frames=81,
    size_multiple=16,
    guidance_min=1.0,
    guidance_max=10.0,  # cfg_scale 0.5 → 5.5, the FLF2V example's default
    default_steps=50,
    default_negative_prompt=WAN_NEGATIVE_PROMPT,
    supports_end_image=True,
)

LTX = ModelFamily(
    name="ltx",
    pipeline_class="LTXConditionPipeline",
    fps=24,
    frame_step=8,
    native_max_frames=161,
    size_multiple=32,
    guidance_min=1.0,
    guidance_max=5.0,  # cfg_scale 0.5 → 3.0, the pipeline's default
    default_steps=40,
    default_negative_prompt=LTX_NEGATIVE_PROMPT,
    supports_end_image=True,
)

FAMILIES: dict[str, ModelFamily] = {f.name: f for f in (WAN_TI2V, WAN_FLF2V, LTX)}


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelDirError(f"{what} is missing ({path})") from None
    except OSError as e:
        raise ModelDirError(f"{what} cannot be read ({path}): {e.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ModelDirError(f"{what} is not valid JSON ({path}, line {e.lineno}): {e.msg}") from None
    if not isinstance(data, dict):
        raise ModelDirError(f"{what} is not a JSON object ({path})")
    return data


def detect_family(model_dir: Path) -> ModelFamily:
    """The family of the diffusers model in ``model_dir``, from its ``model_index.json`` and component configs.

    Raises ``ModelDirError`` with a sentence saying what is wrong and how to fix it.
    """
    if not model_dir.is_dir():
        raise ModelDirError(f"model directory {model_dir} does not exist (prepare it with `download` or "
                            "`make-tiny-model`)")
    index = _read_json(model_dir / "model_index.json", "the model's model_index.json")
    cls = index.get("_class_name")
    # Every component the index names must be there: a half-copied directory fails here, not mid-task.
    for name, value in index.items():
        if name.startswith("_") or not isinstance(value, list) or len(value) != 2 or value[0] is None:
            continue
        if not (model_dir / name).is_dir():
            raise ModelDirError(f"component '{name}' listed in model_index.json is missing ({model_dir / name})")

    if cls == "WanImageToVideoPipeline":
        if index.get("expand_timesteps") is True:
            return WAN_TI2V
        transformer = index.get("transformer")
        config_dir = "transformer" if isinstance(transformer, list) and transformer[0] is not None else "transformer_2"
        config = _read_json(model_dir / config_dir / "config.json", f"the {config_dir} config")
        if config.get("pos_embed_seq_len") is not None:
            return replace(WAN_FLF2V, requires_end_image=True)
        return WAN_FLF2V
    if cls in ("LTXConditionPipeline", "LTXPipeline", "LTXImageToVideoPipeline"):
        # The three share components; LTXConditionPipeline is the one with frame conditions (first and last frame).
        return LTX
    supported = "WanImageToVideoPipeline (Wan 2.2 TI2V, Wan 2.1/2.2 I2V and FLF2V), LTXConditionPipeline (LTX-Video)"
    raise ModelDirError(f"unsupported model: model_index.json names pipeline {cls!r}; supported: {supported}")
