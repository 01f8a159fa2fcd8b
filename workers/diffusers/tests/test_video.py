"""MP4 writing (H.264, yuv420p, faststart, exact frame count) and the audio seam."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kinema_diffusers.video import (
    KinemaSoundtrack,
    MediaError,
    SoundtrackRequest,
    mux_audio,
    soundtrack_source,
    write_mp4,
)
from tests.helpers import SilentSoundtrack, ToneSoundtrack, audio_stream, has_audio, mean_volume, probe, video_stream


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


def video_packets_md5(path: Path) -> str:
    return subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-i", str(path), "-map", "0:v:0",
                           "-c", "copy", "-f", "md5", "-"], capture_output=True, text=True, check=True).stdout


def mux_tone(tmp_path: Path, video_frames: int, audio_seconds: float) -> dict[str, Any]:
    video = tmp_path / "v.mp4"
    write_mp4(frames(video_frames), 64, 32, 24, video)
    audio = tmp_path / "a.wav"
    ToneSoundtrack().write(SoundtrackRequest("rain", None, audio_seconds, 1), audio)
    out = tmp_path / "out.mp4"
    mux_audio(video, audio, out)
    assert video_packets_md5(out) == video_packets_md5(video)  # the video is copied, not re-encoded
    info = probe(out)
    assert video_stream(info)["nb_read_frames"] == str(video_frames)
    a = audio_stream(info)
    assert (a["codec_name"], a["sample_rate"], a["channels"]) == ("aac", "48000", 2)
    data = out.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")  # +faststart
    assert mean_volume(out) > -50
    return a


def test_a_wav_is_encoded_to_aac_and_muxed_without_reencoding_the_video(tmp_path: Path) -> None:
    a = mux_tone(tmp_path, video_frames=24, audio_seconds=1.0)
    assert abs(float(a["duration"]) - 1.0) < 0.1
    assert 100_000 < int(a["bit_rate"]) < 200_000  # 160k


def test_the_volume_check_tells_a_silent_track_from_an_audible_one(tmp_path: Path) -> None:
    # Calibrates the "not silent" checks (mean_volume > -50 dB) used here and in the end-to-end tests.
    request = SoundtrackRequest("rain", None, 1.0, 1)
    SilentSoundtrack().write(request, tmp_path / "silent.wav")
    ToneSoundtrack().write(request, tmp_path / "tone.wav")
    assert mean_volume(tmp_path / "silent.wav") < -80
    assert mean_volume(tmp_path / "tone.wav") > -50


def test_a_shorter_wav_is_padded_with_silence_to_the_video_length(tmp_path: Path) -> None:
    a = mux_tone(tmp_path, video_frames=72, audio_seconds=1.0)
    assert abs(float(a["duration"]) - 3.0) < 0.1


def test_a_longer_wav_is_cut_to_the_video_length(tmp_path: Path) -> None:
    a = mux_tone(tmp_path, video_frames=48, audio_seconds=3.5)
    assert abs(float(a["duration"]) - 2.0) < 0.1


def test_no_soundtrack_source_without_the_kinema_binary(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="kinema_diffusers.video")
    assert soundtrack_source(str(tmp_path / "no-such-kinema")) is None
    [warning] = [r.getMessage() for r in caplog.records]
    assert "not found" in warning and "does not advertise 'sound'" in warning
    assert soundtrack_source(None) is None


def test_soundtrack_source_uses_kinema_when_it_has_the_command(tmp_path: Path) -> None:
    # A stand-in `kinema` that records its arguments and answers --help: the seam's real path is taken.
    fake = tmp_path / "kinema"
    log = tmp_path / "args"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {log}\n'
                    'echo "USAGE: kinema soundtrack --prompt <prompt> --duration <duration> --seed <seed> -o <o>"\n')
    fake.chmod(0o755)
    source = soundtrack_source(str(fake))
    assert isinstance(source, KinemaSoundtrack)
    with pytest.raises(MediaError, match="wrote no audio"):  # exit 0 without the WAV is a failure too
        source.write(SoundtrackRequest("rain on a roof", "music", 3.0, 9), tmp_path / "a.wav")
    assert "soundtrack --prompt rain on a roof --duration 3 --seed 9 -o " + str(tmp_path / "a.wav") in log.read_text()
    assert "--negative-prompt music" in log.read_text()


def test_long_joined_prompts_are_cut_to_what_kinema_soundtrack_takes(tmp_path: Path) -> None:
    fake = tmp_path / "kinema"
    log = tmp_path / "args"
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {log}\necho "kinema soundtrack --duration"\n')
    fake.chmod(0o755)
    source = soundtrack_source(str(fake))
    assert source is not None
    shots = " ".join(f"shot {i}: heavy rain over the harbour, boats rocking at the quay" for i in range(60))
    with pytest.raises(MediaError):
        source.write(SoundtrackRequest(shots, "  ", 9.0, 1), tmp_path / "a.wav")
    args = log.read_text().splitlines()
    prompt = args[args.index("--prompt") + 1]
    assert 2400 < len(prompt) <= 2500 and shots.startswith(prompt) and not prompt.endswith(" ")
    assert "--negative-prompt" not in args  # blank: left out


def test_a_failing_kinema_soundtrack_is_a_media_error(tmp_path: Path) -> None:
    fake = tmp_path / "kinema"
    fake.write_text('#!/bin/sh\n'
                    'if [ "$2" = "--help" ]; then echo "USAGE: kinema soundtrack --duration <d>"; exit 0; fi\n'
                    'echo "Error: --duration must be 1...600" >&2\nexit 64\n')
    fake.chmod(0o755)
    source = soundtrack_source(str(fake))
    assert source is not None
    with pytest.raises(MediaError, match=r"exit 64.*--duration must be"):
        source.write(SoundtrackRequest("rain", None, 0.5, 1), tmp_path / "a.wav")


def test_a_kinema_without_the_soundtrack_command_means_no_sound(tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    # An older kinema answers `soundtrack --help` with its root help and exit status 0.
    fake = tmp_path / "kinema"
    fake.write_text('#!/bin/sh\necho "USAGE: kinema <subcommand>"\necho "  serve  Run the API server"\n')
    fake.chmod(0o755)
    caplog.set_level(logging.WARNING, logger="kinema_diffusers.video")
    assert soundtrack_source(str(fake)) is None
    assert "has no working 'soundtrack' command" in caplog.text
