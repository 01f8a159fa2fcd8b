"""MP4 writing (H.264, yuv420p, faststart, exact frame count) and the audio seam."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kinema_diffusers.video import (
    KinemaSoundtrack,
    MediaError,
    SilentSoundtrack,
    SoundtrackRequest,
    mux_audio,
    soundtrack_source,
    write_mp4,
)
from tests.helpers import has_audio, probe, video_stream


def frames(n: int, w: int = 64, h: int = 32) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def test_mp4_has_exactly_the_frames_at_the_fps(tmp_path: Path) -> None:
    out = tmp_path / "v.mp4"
    assert write_mp4(frames(37), 64, 32, 16, out) == 37
    info = probe(out)
    v = video_stream(info)
    assert (v["codec_name"], v["pix_fmt"], v["width"], v["height"]) == ("h264", "yuv420p", 64, 32)
    assert v["nb_read_frames"] == "37"
    assert v["r_frame_rate"] == "16/1"
    assert not has_audio(info)
    data = out.read_bytes()
    assert data[4:8] == b"ftyp"
    assert data.find(b"moov") < data.find(b"mdat")  # +faststart


def test_wrong_frame_shape_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="expected"):
        write_mp4(frames(2, 32, 32), 64, 32, 24, tmp_path / "v.mp4")


def test_silent_track_is_muxed_without_reencoding_the_video(tmp_path: Path) -> None:
    video = tmp_path / "v.mp4"
    write_mp4(frames(24), 64, 32, 24, video)
    audio = tmp_path / "a.m4a"
    SilentSoundtrack().write(SoundtrackRequest("rain", None, 1.0, 1), audio)
    out = tmp_path / "out.mp4"
    mux_audio(video, audio, out)
    info = probe(out)
    assert has_audio(info)
    assert video_stream(info)["nb_read_frames"] == "24"
    a = next(s for s in info["streams"] if s["codec_type"] == "audio")
    assert a["codec_name"] == "aac"
    assert abs(float(a["duration"]) - 1.0) < 0.1


def test_soundtrack_source_falls_back_to_silence_without_the_kinema_binary(tmp_path: Path) -> None:
    assert isinstance(soundtrack_source(str(tmp_path / "no-such-kinema")), SilentSoundtrack)
    assert isinstance(soundtrack_source(None), SilentSoundtrack)


def test_soundtrack_source_uses_kinema_when_it_has_the_command(tmp_path: Path) -> None:
    # A stand-in `kinema` that records its arguments and answers --help: the seam's real path is taken.
    fake = tmp_path / "kinema"
    log = tmp_path / "args"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {log}\n'
                    'echo "USAGE: kinema soundtrack --prompt <prompt> --duration <duration> --seed <seed> -o <o>"\n')
    fake.chmod(0o755)
    source = soundtrack_source(str(fake))
    assert isinstance(source, KinemaSoundtrack)
    with pytest.raises(MediaError):  # it writes no file, so a later mux would fail; the call itself succeeds
        source.write(SoundtrackRequest("rain on a roof", "music", 3.0, 9), tmp_path / "a.m4a")
        mux_audio(tmp_path / "missing.mp4", tmp_path / "a.m4a", tmp_path / "o.mp4")
    assert "soundtrack --prompt rain on a roof --duration 3 --seed 9 -o" in log.read_text()
    assert "--negative-prompt music" in log.read_text()


def test_a_kinema_without_the_soundtrack_command_means_silence(tmp_path: Path) -> None:
    # An older kinema answers `soundtrack --help` with its root help and exit status 0.
    fake = tmp_path / "kinema"
    fake.write_text('#!/bin/sh\necho "USAGE: kinema <subcommand>"\necho "  serve  Run the API server"\n')
    fake.chmod(0o755)
    assert isinstance(soundtrack_source(str(fake)), SilentSoundtrack)
