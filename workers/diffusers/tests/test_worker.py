"""The worker loop against a stand-in node on 127.0.0.1: claim, inputs, heartbeats, upload, fail, release."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from kinema_diffusers.engine import Engine
from kinema_diffusers.protocol import TaskRequest, WorkerClient
from kinema_diffusers.video import SoundtrackSource
from kinema_diffusers.worker import NO_SOUND_REASON, Outcome, Worker, WorkerConfig
from tests.helpers import (
    ToneSoundtrack,
    audio_stream,
    has_audio,
    mean_volume,
    picture,
    png_bytes,
    probe,
    request,
    video_stream,
)
from tests.standin import TOKEN, StandIn, serve


@pytest.fixture()
def node() -> Iterator[tuple[StandIn, str]]:
    state = StandIn()
    server, url = serve(state)
    yield state, url
    server.shutdown()
    server.server_close()


def with_steps(engine: Engine, steps: int) -> Engine:
    return Engine(engine.pipe, engine.family, engine.rule, replace(engine.options, steps=steps), engine.model_name)


def make_worker(engine: Engine, url: str, on_step: Callable[[int, int], None] | None = None,
                sound: SoundtrackSource | None = None, **config: object) -> Worker:
    cfg = WorkerConfig(worker_id="test-box", lease_seconds=8, claim_wait=0, heartbeat_seconds=0.2)
    cfg = replace(cfg, **config)  # type: ignore[arg-type]
    return Worker(cfg, engine, WorkerClient(url, TOKEN, timeout=10), sound or ToneSoundtrack(), on_step=on_step)


def queue(state: StandIn, req: TaskRequest, image: bytes | None = None, end: bytes | None = None) -> None:
    inputs = {"image": image if image is not None else png_bytes(picture(400, 300))}
    if end is not None:
        inputs["end_image"] = end
    state.tasks.append((req, inputs))


def run_one(worker: Worker, timeout: float = 120) -> None:
    t = threading.Thread(target=worker.run, kwargs={"max_tasks": 1}, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "the worker did not finish its task in time"


def test_worker_renders_uploads_and_reports_monotone_progress(ti2v: Engine, node: tuple[StandIn, str],
                                                              tmp_path: Path) -> None:
    state, url = node
    sound = ToneSoundtrack(scale=0.5)  # a WAV half the clip's length: the mux pads it
    queue(state, request(prompt='heavy rain on the lighthouse, "hold on"', duration=1, sound=True, seed=11))
    run_one(make_worker(ti2v, url, sound=sound))

    orphans = state.of("POST", "/orphans")
    assert [c.body for c in orphans] == [{"worker_id": "test-box"}]
    claim = state.of("POST", "/claim")[0].body
    assert claim == {"worker_id": "test-box", "engine": "diffusers", "model": ti2v.model_name,
                     "capabilities": ["multi_prompt", "sound"], "lease_seconds": 8, "wait_seconds": 0}
    assert state.calls.index(orphans[0]) < state.calls.index(state.of("POST", "/claim")[0])
    assert len(state.of("GET", "/inputs/image")) == 1

    [put] = state.of("PUT", "/result")
    task_id = put.path.split("/")[-2]
    assert put.query["lease_id"] == [state.leases[task_id]]
    out = tmp_path / "result.mp4"
    out.write_bytes(put.body)
    info = probe(out)
    v = video_stream(info)
    assert (v["codec_name"], v["pix_fmt"], v["width"], v["height"]) == ("h264", "yuv420p", 64, 32)
    assert v["nb_read_frames"] == "24" and v["r_frame_rate"] == "24/1"
    [asked] = sound.requests
    assert (asked.prompt, asked.duration, asked.seed) == ('heavy rain on the lighthouse, "hold on"', 1.0, 11)
    a = audio_stream(info)
    assert a["codec_name"] == "aac" and abs(float(a["duration"]) - 1.0) < 0.1
    assert mean_volume(out) > -50

    beats = [c.body for c in state.of("POST", "/heartbeat")]
    assert beats, "no heartbeat was sent during the render"
    progress = [b["progress_percent"] for b in beats]
    assert progress == sorted(progress) and all(0 <= p <= 99 for p in progress)
    assert all(isinstance(b["eta_seconds"], int) and 0 <= b["eta_seconds"] <= 86400 for b in beats)
    assert all(b["lease_id"] == state.leases[task_id] and b["lease_seconds"] == 8 for b in beats)
    assert not state.of("POST", "/fail") and not state.of("POST", "/release")


def test_a_task_without_sound_gets_no_audio_track(ti2v: Engine, node: tuple[StandIn, str],
                                                  tmp_path: Path) -> None:
    state, url = node
    sound = ToneSoundtrack()
    queue(state, request(duration=1, sound=False))
    run_one(make_worker(ti2v, url, sound=sound))
    [put] = state.of("PUT", "/result")
    out = tmp_path / "result.mp4"
    out.write_bytes(put.body)
    assert not has_audio(probe(out))
    assert not sound.requests


def test_without_a_soundtrack_the_claim_does_not_advertise_sound(ti2v: Engine, ltx: Engine) -> None:
    assert Worker(WorkerConfig(worker_id="w"), ti2v, WorkerClient("http://127.0.0.1:9", TOKEN), None
                  ).claim_body().capabilities == ["multi_prompt"]
    assert Worker(WorkerConfig(worker_id="w"), ltx, WorkerClient("http://127.0.0.1:9", TOKEN), None
                  ).claim_body().capabilities == ["end_image", "multi_prompt"]
    assert Worker(WorkerConfig(worker_id="w"), ltx, WorkerClient("http://127.0.0.1:9", TOKEN), ToneSoundtrack()
                  ).claim_body().capabilities == ["end_image", "multi_prompt", "sound"]


def test_a_sound_task_handed_to_a_worker_without_a_soundtrack_fails_not_retryable(
        ti2v: Engine, node: tuple[StandIn, str]) -> None:
    state, url = node
    # An older node ignores capabilities and hands the sound task over anyway.
    queue(state, request(prompt="heavy rain", sound=True))
    worker = Worker(WorkerConfig(worker_id="test-box", lease_seconds=8, claim_wait=0, heartbeat_seconds=0.2), ti2v,
                    WorkerClient(url, TOKEN, timeout=10), None)
    run_one(worker)
    assert state.of("POST", "/claim")[0].body["capabilities"] == ["multi_prompt"]
    [fail] = state.of("POST", "/fail")
    assert fail.body["retryable"] is False
    assert fail.body["reason"] == NO_SOUND_REASON
    assert fail.body["reason"].startswith("this worker cannot make sound: ")
    assert "kinema soundtrack" in fail.body["reason"]
    assert not state.of("PUT", "/result")
    assert not state.of("GET", "/inputs/image")  # failed before anything was downloaded or rendered


def test_lost_lease_interrupts_within_one_step_and_uploads_nothing(ti2v: Engine,
                                                                   node: tuple[StandIn, str]) -> None:
    state, url = node
    steps_seen: list[int] = []
    at_409: list[int] = []

    def heartbeat(body: dict[str, object]) -> int:
        if len(steps_seen) >= 3:
            at_409.append(len(steps_seen))
            return 409
        return 200

    state.heartbeat_status = heartbeat
    queue(state, request(duration=1))

    def on_step(segment: int, step: int) -> None:
        steps_seen.append(step)
        # A tiny model's step takes milliseconds, less than a loopback round trip under load; a real model's
        # takes seconds. Holding each step 50 ms keeps "one step" longer than the heartbeat's round trip.
        time.sleep(0.05)

    run_one(make_worker(with_steps(ti2v, 30), url, on_step=on_step))

    assert at_409, "the stand-in never answered 409"
    assert len(steps_seen) <= at_409[0] + 1, f"{len(steps_seen)} steps ran; the lease was lost after {at_409[0]}"
    assert len(steps_seen) < 30
    assert not state.of("PUT", "/result")
    assert not state.of("POST", "/fail") and not state.of("POST", "/release")
    assert len(at_409) == 1  # no heartbeat after the 409


def test_end_image_task_on_ti2v_fails_not_retryable(ti2v: Engine, node: tuple[StandIn, str]) -> None:
    state, url = node
    queue(state, request(has_end_image=True), end=png_bytes(picture(400, 300, 5)))
    run_one(make_worker(ti2v, url))
    [fail] = state.of("POST", "/fail")
    assert fail.body["retryable"] is False
    assert "end_image" in fail.body["reason"] and len(fail.body["reason"]) <= 1000
    assert not state.of("PUT", "/result")


def test_bad_input_fails_not_retryable(ti2v: Engine, node: tuple[StandIn, str]) -> None:
    state, url = node
    queue(state, request(), image=b"GIF89a" + bytes(200))
    run_one(make_worker(ti2v, url))
    [fail] = state.of("POST", "/fail")
    assert fail.body["retryable"] is False
    assert "neither PNG nor JPEG" in fail.body["reason"]
    assert not state.of("PUT", "/result")


def test_refused_upload_fails_not_retryable(ti2v: Engine, node: tuple[StandIn, str]) -> None:
    state, url = node
    state.result_statuses = [413]
    queue(state, request())
    run_one(make_worker(ti2v, url))
    assert len(state.of("PUT", "/result")) == 1
    [fail] = state.of("POST", "/fail")
    assert fail.body["retryable"] is False and "413" in fail.body["reason"]


def test_upload_is_retried_after_503(ti2v: Engine, node: tuple[StandIn, str]) -> None:
    state, url = node
    state.result_statuses = [503]
    queue(state, request())
    run_one(make_worker(ti2v, url))
    puts = state.of("PUT", "/result")
    assert len(puts) == 2 and puts[0].body == puts[1].body
    assert not state.of("POST", "/fail")


def test_shutdown_lets_a_task_finish_within_the_grace(ti2v: Engine, node: tuple[StandIn, str]) -> None:
    state, url = node
    holder: list[Worker] = []
    worker = make_worker(ti2v, url, on_step=lambda seg, i: holder[0].request_stop(), shutdown_grace=60)
    holder.append(worker)
    queue(state, request())
    queue(state, request())  # never claimed: the worker stops claiming
    run_one(worker)
    assert len(state.of("PUT", "/result")) == 1
    assert len(state.of("POST", "/claim")) == 1
    assert not state.of("POST", "/release")


def test_shutdown_releases_a_task_that_cannot_finish_in_the_grace(ti2v: Engine, node: tuple[StandIn, str]) -> None:
    state, url = node
    holder: list[Worker] = []
    steps: list[int] = []

    def on_step(seg: int, i: int) -> None:
        steps.append(i)
        holder[0].request_stop()

    worker = make_worker(with_steps(ti2v, 200), url, on_step=on_step, shutdown_grace=0.3)
    holder.append(worker)
    queue(state, request())
    started = time.monotonic()
    run_one(worker)
    assert time.monotonic() - started < 60
    [release] = state.of("POST", "/release")
    task_id = release.path.split("/")[-2]
    assert release.body == {"lease_id": state.leases[task_id]}
    assert not state.of("PUT", "/result") and not state.of("POST", "/fail")
    assert len(steps) < 200


def test_worker_token_refused_is_fatal(ti2v: Engine, node: tuple[StandIn, str]) -> None:
    from kinema_diffusers.protocol import ProtocolError

    _, url = node
    worker = Worker(WorkerConfig(worker_id="w", claim_wait=0), ti2v, WorkerClient(url, "kwt_wrong"), None)
    with pytest.raises(ProtocolError, match="403"):
        worker.run(max_tasks=1)


def test_outcome_names_are_stable() -> None:
    assert {o.value for o in Outcome} == {"done", "lease lost", "failed", "canceled"}


def test_out_of_memory_fails_retryable(ti2v: Engine, node: tuple[StandIn, str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    state, url = node
    engine = with_steps(ti2v, 2)

    def out_of_memory(*args: object, **kwargs: object) -> None:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    # Only the classification is under test here: the render itself is covered by the tests above.
    monkeypatch.setattr(engine, "render", out_of_memory)
    queue(state, request())
    run_one(make_worker(engine, url))
    [fail] = state.of("POST", "/fail")
    assert fail.body["retryable"] is True and "out of accelerator memory" in fail.body["reason"]


def test_model_crash_fails_retryable_with_a_readable_reason(ti2v: Engine, node: tuple[StandIn, str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    state, url = node
    engine = with_steps(ti2v, 2)

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("expected all tensors to be on the same device" + " x" * 2000)

    monkeypatch.setattr(engine, "render", crash)
    queue(state, request())
    run_one(make_worker(engine, url))
    [fail] = state.of("POST", "/fail")
    assert fail.body["retryable"] is True
    assert fail.body["reason"].startswith("the model failed: RuntimeError: expected all tensors")
    assert len(fail.body["reason"]) <= 1000


def test_unreachable_node_is_retried_with_backoff_until_stopped(ti2v: Engine,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    import logging
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    worker = make_worker(ti2v, f"http://127.0.0.1:{port}")
    caplog.set_level(logging.WARNING, logger="kinema_diffusers.worker")
    t = threading.Thread(target=worker.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and sum(r.getMessage().startswith("orphans:") for r in caplog.records) < 2:
        time.sleep(0.05)
    worker.request_stop()
    t.join(10)
    assert not t.is_alive()
    retries = [r.getMessage() for r in caplog.records if r.getMessage().startswith("orphans:")]
    assert len(retries) >= 2 and all("retrying in" in m for m in retries)
    assert "retrying in 1 s" in retries[0] and "retrying in 2 s" in retries[1]
