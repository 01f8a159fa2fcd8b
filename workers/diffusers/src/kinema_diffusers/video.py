"""MP4 writing with the ``ffmpeg`` CLI: H.264 yuv420p with ``+faststart``, and an optional AAC track.

The soundtrack comes through one seam, ``SoundtrackSource``: Kinema's procedural soundtrack (``kinema soundtrack``,
a WAV), encoded to AAC when muxed. Without that command there is no source (``soundtrack_source`` returns None) and
the worker does not take sound tasks: it never ships a silent track in place of the sound a user asked for.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

log = logging.getLogger("kinema_diffusers.video")

Frame = npt.NDArray[np.uint8]  # (height, width, 3) RGB


class MediaError(Exception):
    """ffmpeg or the soundtrack command failed."""


def _run(cmd: list[str], what: str, timeout: float = 600) -> None:
    try:
        r = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise MediaError(f"{what}: {cmd[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        raise MediaError(f"{what}: {cmd[0]} did not finish within {timeout:.0f} s") from None
    if r.returncode != 0:
        tail = r.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
        raise MediaError(f"{what} failed (exit {r.returncode}): {' | '.join(tail)}")


def write_mp4(frames: Iterable[Frame], width: int, height: int, fps: int, out: Path, ffmpeg: str = "ffmpeg",
              preset: str = "veryfast", crf: int = 18) -> int:
    """Encodes RGB frames to ``out`` (H.264, yuv420p, +faststart) at ``fps``; returns the frame count."""
    cmd = [ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
           "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(fps), "-i", "pipe:0",
           "-an", "-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p",
           "-movflags", "+faststart", str(out)]
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    except FileNotFoundError:
        raise MediaError(f"MP4 encode: {ffmpeg} is not installed") from None
    assert proc.stdin is not None
    count = 0
    try:
        for frame in frames:
            if frame.shape != (height, width, 3) or frame.dtype != np.uint8:
                raise MediaError(f"MP4 encode: frame {count} is {frame.shape} {frame.dtype}, "
                                 f"expected ({height}, {width}, 3) uint8")
            proc.stdin.write(np.ascontiguousarray(frame).tobytes())
            count += 1
        proc.stdin.close()
    except BrokenPipeError:
        pass
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    assert proc.stderr is not None
    err = proc.stderr.read()  # small: -loglevel error
    proc.wait(timeout=600)
    if proc.returncode != 0:
        raise MediaError(f"MP4 encode failed (exit {proc.returncode}): {err.decode('utf-8', 'replace')[-300:]}")
    return count


def mux_audio(video: Path, audio: Path, out: Path, ffmpeg: str = "ffmpeg") -> None:
    """``video``'s H.264 (copied) and ``audio`` (any format ffmpeg reads, e.g. WAV) encoded to AAC 160 kb/s in one MP4
    (+faststart). The audio is padded with silence, or cut, to the video's length: the track covers the whole clip."""
    _run([ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-i", str(video), "-i", str(audio),
          "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", "-c:a", "aac", "-b:a", "160k", "-af", "apad", "-shortest",
          "-movflags", "+faststart", str(out)], "audio mux")


@dataclass(frozen=True)
class SoundtrackRequest:
    prompt: str
    negative_prompt: str | None
    duration: float
    seed: int


class SoundtrackSource(Protocol):
    """Writes a WAV (16-bit PCM, 48 kHz, stereo) of exactly the requested length."""

    name: str

    def write(self, request: SoundtrackRequest, out: Path) -> None: ...


SOUNDTRACK_MAX_PROMPT = 2500  # `kinema soundtrack` takes prompts of 1-2500 characters


def _clip(text: str, limit: int = SOUNDTRACK_MAX_PROMPT) -> str:
    """``text`` cut to ``limit`` characters at a word boundary (multi_prompt's joined shots can exceed it)."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit]
    return cut.rsplit(" ", 1)[0] if " " in cut else cut


class KinemaSoundtrack:
    """Kinema's procedural soundtrack (``kinema soundtrack``): ambience beds and effects from prompt cues, quoted
    dialogue spoken by eSpeak NG. Not co-generated with the video: made from the prompt alone."""

    name = "kinema"

    def __init__(self, binary: str) -> None:
        self.binary = binary

    def write(self, request: SoundtrackRequest, out: Path) -> None:
        cmd = [self.binary, "soundtrack", "--prompt", _clip(request.prompt), "--duration", f"{request.duration:g}",
               "--seed", str(request.seed), "-o", str(out)]
        if request.negative_prompt and request.negative_prompt.strip():
            cmd += ["--negative-prompt", _clip(request.negative_prompt)]
        _run(cmd, "kinema soundtrack", timeout=300)
        if not out.is_file() or out.stat().st_size == 0:
            raise MediaError(f"kinema soundtrack exited 0 but wrote no audio to {out.name}")


def soundtrack_source(kinema_bin: str | None) -> SoundtrackSource | None:
    """Kinema's soundtrack when ``kinema_bin`` resolves to a binary whose CLI has ``soundtrack``; else None (with one
    warning saying why): the worker then neither advertises nor makes sound."""
    why = "no kinema binary is configured (--kinema-bin / KINEMA_BIN)"
    if kinema_bin:
        path = shutil.which(kinema_bin)
        if path is None:
            why = f"kinema binary {kinema_bin!r} not found"
        else:
            try:
                r = subprocess.run([path, "soundtrack", "--help"], capture_output=True, timeout=30, check=False)
                # A kinema without the command prints its root help (exit 0): look for the command's own usage.
                if r.returncode == 0 and b"soundtrack" in r.stdout and b"--duration" in r.stdout:
                    return KinemaSoundtrack(path)
                why = f"{path} has no working 'soundtrack' command"
            except (OSError, subprocess.TimeoutExpired) as e:
                why = f"{path} could not be run ({e})"
    log.warning("sound: %s; this worker does not advertise 'sound' and fails sound tasks it is handed", why)
    return None
