"""Test helpers: request builders, PNG fixtures, ffprobe/volumedetect, and stand-in soundtrack sources."""

from __future__ import annotations

import io
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from kinema_diffusers.protocol import Shot, TaskRequest
from kinema_diffusers.video import SoundtrackRequest


def request(prompt: str | None = "a lighthouse at dusk, waves", duration: int = 1, cfg_scale: float = 0.5,
            seed: int = 7, has_end_image: bool = False, sound: bool = False,
            multi_prompt: list[tuple[str, int]] | None = None, negative_prompt: str | None = None) -> TaskRequest:
    shots = tuple(Shot(p, d) for p, d in multi_prompt) if multi_prompt is not None else None
    return TaskRequest(prompt=None if shots else prompt, negative_prompt=negative_prompt, duration=duration,
                       cfg_scale=cfg_scale, sound=sound, multi_prompt=shots, seed=seed, has_end_image=has_end_image,
                       fps=24, frame_count=duration * 24)


def request_json(r: TaskRequest) -> dict[str, Any]:
    return {
        "prompt": r.prompt, "negative_prompt": r.negative_prompt, "duration": r.duration, "cfg_scale": r.cfg_scale,
        "sound": r.sound,
        "multi_prompt": [{"prompt": s.prompt, "duration": s.duration} for s in r.multi_prompt]
        if r.multi_prompt else None,
        "seed": r.seed, "has_end_image": r.has_end_image, "fps": r.fps, "frame_count": r.frame_count,
    }


def picture(width: int = 400, height: int = 300, seed: int = 0) -> Image.Image:
    """A textured RGB picture (a gradient with seeded noise)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / width, y * 255 / height, (x + y) * 127 / (width + height)], axis=-1)
    noisy = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
    return Image.fromarray(noisy)


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def probe(path: Path) -> dict[str, Any]:
    """ffprobe's streams (with counted frames) and format."""
    out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_streams", "-show_format", "-of", "json",
                          str(path)], capture_output=True, check=True, timeout=60).stdout
    result: dict[str, Any] = json.loads(out)
    return result


def video_stream(info: dict[str, Any]) -> dict[str, Any]:
    streams: list[dict[str, Any]] = info["streams"]
    return next(s for s in streams if s["codec_type"] == "video")


def has_audio(info: dict[str, Any]) -> bool:
    return any(s["codec_type"] == "audio" for s in info["streams"])


def audio_stream(info: dict[str, Any]) -> dict[str, Any]:
    streams: list[dict[str, Any]] = info["streams"]
    return next(s for s in streams if s["codec_type"] == "audio")


def mean_volume(path: Path) -> float:
    """ffmpeg ``volumedetect``'s mean volume (dB) of the file's first audio stream; -91 dB is digital silence."""
    r = subprocess.run(["ffmpeg", "-hide_banner", "-nostats", "-i", str(path), "-map", "0:a:0", "-af", "volumedetect",
                        "-f", "null", "-"], capture_output=True, text=True, check=True, timeout=120)
    m = re.search(r"mean_volume: (-?[\d.]+|-inf) dB", r.stderr)
    assert m, r.stderr[-2000:]
    return float(m.group(1))


def _lavfi_wav(source: str, duration: float, out: Path) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", source,
                    "-ac", "2", "-t", f"{duration:g}", "-c:a", "pcm_s16le", str(out)],
                   capture_output=True, check=True, timeout=60)


class SilentSoundtrack:
    """Test double of a ``SoundtrackSource``: a silent 48 kHz stereo WAV of the requested length (ffmpeg)."""

    name = "silent"

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale  # < 1: a WAV shorter than asked, to test the mux's padding
        self.requests: list[SoundtrackRequest] = []

    def write(self, request: SoundtrackRequest, out: Path) -> None:
        self.requests.append(request)
        _lavfi_wav("anullsrc=r=48000:cl=stereo", request.duration * self.scale, out)


class ToneSoundtrack(SilentSoundtrack):
    """Test double: a 440 Hz tone (clearly not silent), optionally shorter than asked."""

    name = "tone"

    def write(self, request: SoundtrackRequest, out: Path) -> None:
        self.requests.append(request)
        _lavfi_wav("sine=frequency=440:sample_rate=48000", request.duration * self.scale, out)
