"""End to end with the REAL Kinema server: `kinema serve` + this worker as a process, a tiny model, real HTTP.

Needs the release binary (`swift build -c release` → .build/release/kinema, or KINEMA_BIN); the sound tests also
need its `kinema soundtrack` command. Without them these tests are skipped with a loud message; under CI (CI=true)
they fail instead.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kinema_diffusers.video import SoundtrackRequest, SoundtrackSource, soundtrack_source
from tests.helpers import audio_stream, has_audio, mean_volume, picture, png_bytes, probe, video_stream

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[3]


def kinema_binary() -> Path:
    env = os.environ.get("KINEMA_BIN")
    return Path(env) if env else REPO / ".build" / "release" / "kinema"


def not_run(what: str) -> None:
    """Skips loudly; under CI (CI=true) fails instead."""
    message = (f"\n{'!' * 78}\n!! END-TO-END TESTS NOT RUN: {what}\n"
               f"!! build it with `swift build -c release` (or set KINEMA_BIN)\n{'!' * 78}")
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    print(message, file=sys.stderr)
    warnings.warn(message, stacklevel=1)
    pytest.skip(message)


@pytest.fixture(scope="module")
def kinema() -> Path:
    binary = kinema_binary()
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        not_run(f"no kinema binary at {binary}")
    return binary


@pytest.fixture(scope="module")
def soundtrack(kinema: Path) -> SoundtrackSource:
    source = soundtrack_source(str(kinema))
    if source is None:
        not_run(f"{kinema} has no `kinema soundtrack` command (sound tests)")
    assert source is not None
    return source


@dataclass
class Server:
    process: subprocess.Popen[str]
    url: str
    key: str
    data_dir: Path
    lines: list[str] = field(default_factory=list)

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Authorization": f"Bearer {self.key}",
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def task(self, task_id: str) -> dict[str, Any]:
        status, body = self.api("GET", f"/v3/async/task-result?task_id={task_id}")
        assert status == 200, body
        return body

    def wait_status(self, task_id: str, statuses: set[str], timeout: float = 240) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            body = self.task(task_id)
            if body["task"]["status"] in statuses:
                return body
            time.sleep(0.2)
        raise AssertionError(f"task {task_id} did not reach {statuses} in {timeout} s: {body}")


def start_server(binary: Path, data_dir: Path, extra: list[str]) -> Server:
    help_text = subprocess.run([str(binary), "serve", "--help"], capture_output=True, text=True, timeout=60).stdout
    engine = ["--engine", "diffusers"] if "--engine" in help_text else []
    cmd = [str(binary), "serve", "--port", "0", "--data-dir", str(data_dir), "--workers", "0",
           "--log-level", "warning", *engine, *extra]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines: list[str] = []

    def drain() -> None:
        assert p.stdout is not None
        for line in p.stdout:
            lines.append(line.rstrip("\n"))

    threading.Thread(target=drain, daemon=True).start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        snapshot = list(lines)
        listening = next((ln for ln in snapshot if "listening on " in ln), None)
        key_at = next((i for i, ln in enumerate(snapshot) if "Dev API key" in ln), None)
        if listening and key_at is not None and key_at + 1 < len(snapshot):
            url = next(w for w in listening.split() if w.startswith("http://")).rstrip("/")
            return Server(p, url, snapshot[key_at + 1].strip(), data_dir, lines)
        if p.poll() is not None:
            break
        time.sleep(0.05)
    p.kill()
    raise AssertionError(f"kinema serve did not start: {lines}")


def create_token(binary: Path, data_dir: Path) -> str:
    r = subprocess.run([str(binary), "worker-token", "create", "--name", "gpu", "--data-dir", str(data_dir)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return [ln for ln in r.stdout.splitlines() if ln.strip()][-1].strip()


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, pattern: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if re.search(pattern, self.log):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"worker log never matched {pattern!r}:\n{self.log[-3000:]}")

    def stop(self) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait(30)


def start_worker(server: Server, token: str, model: Path, worker_id: str, log_path: Path, binary: Path,
                 *extra: str) -> WorkerProcess:
    env = {**os.environ, "KINEMA_WORKER_TOKEN": token, "KINEMA_TORCH_THREADS": "2", "KINEMA_BIN": str(binary)}
    cmd = [sys.executable, "-m", "kinema_diffusers", "run", "--server", server.url, "--model", str(model),
           "--worker-id", worker_id, "--device", "cpu", "--max-area", str(64 * 64), "--claim-wait", "2", *extra]
    log = log_path.open("wb")
    p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    return WorkerProcess(p, log_path)


@pytest.fixture()
def node(kinema: Path, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Server]:
    extra: list[str] = getattr(request, "param", [])
    server = start_server(kinema, tmp_path / "data", extra)
    yield server
    server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(60)
    except subprocess.TimeoutExpired:
        server.process.kill()


def submit(server: Server, body: dict[str, Any], end_image: bool = False) -> str:
    png = png_bytes(picture(480, 320))
    if end_image:
        body = {**body, "end_image": base64.b64encode(png_bytes(picture(480, 320, seed=9))).decode()}
    status, answer = server.api("POST", "/v3/async/kling-v3.0-std-i2v",
                                {"image": base64.b64encode(png).decode(), **body})
    assert status == 200, answer
    task_id: str = answer["task_id"]
    return task_id


def check_video(done: dict[str, Any], tmp_path: Path, frames: int, sound: bool) -> Path:
    assert done["task"]["status"] == "TASK_STATUS_SUCCEED", done
    url = done["videos"][0]["video_url"]
    out = tmp_path / "result.mp4"
    with urllib.request.urlopen(url, timeout=60) as r:
        out.write_bytes(r.read())
    info = probe(out)
    v = video_stream(info)
    assert (v["codec_name"], v["pix_fmt"]) == ("h264", "yuv420p")
    assert v["nb_read_frames"] == str(frames)
    assert (v["width"], v["height"]) == (64, 32)  # 480×320 under 64×64 on TI2V's multiple of 32
    assert v["r_frame_rate"] == "24/1"
    assert has_audio(info) == sound
    if sound:  # Kinema's soundtrack, encoded to AAC, audible and covering the whole clip
        a = audio_stream(info)
        assert a["codec_name"] == "aac"
        assert abs(float(a["duration"]) - frames / 24) < 0.1, (a["duration"], frames / 24)
        assert mean_volume(out) > -50
    return out


def test_kinema_soundtrack_writes_an_audible_wav_of_the_exact_length(soundtrack: SoundtrackSource,
                                                                     tmp_path: Path) -> None:
    out = tmp_path / "rain.wav"
    soundtrack.write(SoundtrackRequest('heavy rain on a tin roof, "we should go inside"', "music", 2.5, 7), out)
    assert out.read_bytes()[:4] == b"RIFF" and out.read_bytes()[8:12] == b"WAVE"
    a = audio_stream(probe(out))
    assert (a["codec_name"], a["sample_rate"], a["channels"]) == ("pcm_s16le", "48000", 2)
    assert abs(float(a["duration"]) - 2.5) < 0.001, a["duration"]
    assert mean_volume(out) > -50


def test_kinema_soundtrack_is_reproducible_for_a_seed(soundtrack: SoundtrackSource, tmp_path: Path) -> None:
    request = SoundtrackRequest("heavy rain over a forest at night", None, 1.5, 42)
    soundtrack.write(request, tmp_path / "a.wav")
    soundtrack.write(request, tmp_path / "b.wav")
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()


def test_worker_renders_a_multi_prompt_task_with_sound_for_the_real_server(
        kinema: Path, soundtrack: SoundtrackSource, node: Server, tiny_models: dict[str, Path],
        tmp_path: Path) -> None:
    token = create_token(kinema, node.data_dir)
    worker = start_worker(node, token, tiny_models["wan-ti2v"], "e2e-box", tmp_path / "worker.log", kinema,
                          "--steps", "2")
    try:
        shots = [{"prompt": "wide shot of the harbour in heavy rain", "duration": 3},
                 {"prompt": "close on the red boat", "duration": 3},
                 {"prompt": "slow pull out over the water", "duration": 3}]
        task_id = submit(node, {"multi_prompt": shots, "sound": True, "seed": 1234})
        done = node.wait_status(task_id, {"TASK_STATUS_SUCCEED", "TASK_STATUS_FAILED"})
        check_video(done, tmp_path, frames=9 * 24, sound=True)
        assert "sound=kinema" in worker.log
        for n, shot in enumerate(shots, start=1):
            assert re.search(rf'segment {n}/3 shot={n} .*prompt="{shot["prompt"]}"', worker.log), worker.log
        assert token not in worker.log
    finally:
        assert worker.stop() == 0, worker.log[-3000:]


def test_ltx_worker_renders_an_end_image_task_for_the_real_server(
        kinema: Path, node: Server, tiny_models: dict[str, Path], tmp_path: Path) -> None:
    token = create_token(kinema, node.data_dir)
    worker = start_worker(node, token, tiny_models["ltx"], "e2e-ltx", tmp_path / "worker.log", kinema,
                          "--steps", "2")
    try:
        task_id = submit(node, {"prompt": "the tide comes in", "duration": 3, "seed": 5}, end_image=True)
        done = node.wait_status(task_id, {"TASK_STATUS_SUCCEED", "TASK_STATUS_FAILED"})
        check_video(done, tmp_path, frames=3 * 24, sound=False)
        assert re.search(r"segment 1/1 shot=1 frames=73 keep=72 ", worker.log), worker.log
        sound = ",sound" if soundtrack_source(str(kinema)) is not None else ""
        assert f"capabilities=end_image,multi_prompt{sound} " in worker.log
    finally:
        assert worker.stop() == 0, worker.log[-3000:]


@pytest.mark.parametrize("node", [["--lease-seconds", "4", "--rescue-seconds", "1"]], indirect=True)
def test_task_of_a_killed_worker_is_rescued_and_finished_by_another(
        kinema: Path, node: Server, tiny_models: dict[str, Path], tmp_path: Path) -> None:
    token = create_token(kinema, node.data_dir)
    model = tiny_models["wan-ti2v"]
    # A slow first worker (many steps), so it is surely mid-task when it dies.
    first = start_worker(node, token, model, "e2e-doomed", tmp_path / "first.log", kinema, "--steps", "400",
                         "--lease-seconds", "4")
    second: WorkerProcess | None = None
    try:
        task_id = submit(node, {"prompt": "slow push in on the lighthouse", "duration": 3, "seed": 7})
        first.wait_for(rf"task={task_id} claimed attempt=1/")
        first.wait_for(r"segment 1/1 ")
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(30)
        second = start_worker(node, token, model, "e2e-rescuer", tmp_path / "second.log", kinema, "--steps", "2",
                              "--lease-seconds", "4")
        done = node.wait_status(task_id, {"TASK_STATUS_SUCCEED", "TASK_STATUS_FAILED"})
        check_video(done, tmp_path, frames=3 * 24, sound=False)
        assert re.search(rf"task={task_id} claimed attempt=2/", second.log), second.log
        assert f"task={task_id} uploaded" in second.log
    finally:
        if first.process.poll() is None:
            first.process.kill()
        if second is not None:
            assert second.stop() == 0, second.log[-3000:]


def test_a_worker_without_a_soundtrack_is_not_handed_sound_tasks(
        kinema: Path, node: Server, tiny_models: dict[str, Path], tmp_path: Path) -> None:
    token = create_token(kinema, node.data_dir)
    worker = start_worker(node, token, tiny_models["wan-ti2v"], "e2e-mute", tmp_path / "worker.log", kinema,
                          "--steps", "2", "--kinema-bin", str(tmp_path / "no-such-kinema"))
    try:
        worker.wait_for(r"ready .* sound=none ")
        assert "capabilities=multi_prompt sound=none" in worker.log
        with_sound = submit(node, {"prompt": "heavy rain on the lighthouse", "duration": 3, "sound": True})
        silent = submit(node, {"prompt": "slow push in on the lighthouse", "duration": 3})
        done = node.wait_status(silent, {"TASK_STATUS_SUCCEED", "TASK_STATUS_FAILED"})
        check_video(done, tmp_path, frames=3 * 24, sound=False)
        assert node.task(with_sound)["task"]["status"] == "TASK_STATUS_QUEUED"
        assert f"task={with_sound}" not in worker.log
    finally:
        assert worker.stop() == 0, worker.log[-3000:]
