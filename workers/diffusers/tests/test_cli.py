"""The command line: options and their environment variables, and start-up failures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kinema_diffusers.cli import build_parser

WORKER = [sys.executable, "-m", "kinema_diffusers"]


def test_run_options_come_from_the_environment_and_the_command_line_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KINEMA_SERVER", "http://node:8080")
    monkeypatch.setenv("KINEMA_WORKER_TOKEN", "kwt_secret")
    monkeypatch.setenv("KINEMA_MODEL_DIR", "/models/wan")
    monkeypatch.setenv("KINEMA_WORKER_ID", "box1")
    monkeypatch.setenv("KINEMA_DEVICE", "cpu")
    monkeypatch.setenv("KINEMA_STEPS", "8")
    monkeypatch.setenv("KINEMA_OFFLOAD", "1")
    monkeypatch.setenv("KINEMA_MAX_AREA", "4096")
    monkeypatch.setenv("KINEMA_LEASE_SECONDS", "20")
    monkeypatch.setenv("KINEMA_BIN", "/opt/kinema")
    args = build_parser().parse_args(["run", "--steps", "4"])
    assert (args.server, args.worker_token, args.model, args.worker_id, args.device) == (
        "http://node:8080", "kwt_secret", "/models/wan", "box1", "cpu")
    assert (args.steps, args.offload, args.max_area, args.lease_seconds, args.kinema_bin) == (
        4, True, 4096, 20, "/opt/kinema")
    assert args.shutdown_grace == 30 and args.claim_wait == 30 and not args.compile


def test_run_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in list(os.environ):
        if k.startswith("KINEMA_"):
            monkeypatch.delenv(k)
    args = build_parser().parse_args(["run"])
    assert args.lease_seconds == 60 and args.kinema_bin == "kinema" and args.steps is None


def test_download_arguments_parse() -> None:
    args = build_parser().parse_args(["download", "Wan-AI/Wan2.2-TI2V-5B-Diffusers", "--dir", "/m/wan"])
    assert (args.model_id, args.dir) == ("Wan-AI/Wan2.2-TI2V-5B-Diffusers", Path("/m/wan"))


def test_bench_and_tiny_arguments_parse() -> None:
    args = build_parser().parse_args(["bench", "--model", "/m", "--duration", "5", "--steps", "2", "--device", "cpu"])
    assert (args.model, args.duration, args.steps, args.device) == ("/m", 5.0, 2, "cpu")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["make-tiny-model", "--family", "sdxl", "--out", "/tmp/x"])


def test_run_without_a_server_says_what_is_missing() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KINEMA_")}
    r = subprocess.run([*WORKER, "run"], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 2
    assert "missing --server, --worker-token, --model" in r.stderr


def test_start_up_on_a_corrupt_model_dir_fails_with_a_clear_message(tmp_path: Path) -> None:
    bad = tmp_path / "model"
    bad.mkdir()
    (bad / "model_index.json").write_text("{not json")
    env = {**os.environ, "KINEMA_WORKER_TOKEN": "kwt_x"}
    r = subprocess.run([*WORKER, "run", "--server", "http://127.0.0.1:9", "--model", str(bad), "--device", "cpu"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2
    assert "model_index.json is not valid JSON" in r.stderr
    assert "kwt_x" not in r.stderr  # the token never reaches the logs


def test_make_tiny_model_writes_a_loadable_model(tmp_path: Path) -> None:
    out = tmp_path / "tiny"
    r = subprocess.run([*WORKER, "make-tiny-model", "--family", "wan-ti2v", "--out", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert (out / "model_index.json").is_file() and (out / "transformer").is_dir()
    from kinema_diffusers.families import WAN_TI2V, detect_family

    assert detect_family(out) == WAN_TI2V


def test_bench_prints_seconds_per_stage(tiny_models: dict[str, Path]) -> None:
    r = subprocess.run([*WORKER, "bench", "--model", str(tiny_models["ltx"]), "--duration", "1", "--steps", "2",
                        "--device", "cpu", "--max-area", "4096", "--threads", "2"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    rows = {line[:18].strip(): line[18:].strip() for line in r.stdout.splitlines()}  # name column is 18 wide
    for stage in ("load", "text/image encode", "denoise per step", "denoise total", "VAE decode", "MP4 encode",
                  "per clip"):
        assert rows[stage].endswith(" s"), r.stdout
    assert "24 frames 64x32 @ 24 fps" in rows["clip"]
