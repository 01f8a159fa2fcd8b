"""The worker loop: orphans once, then claim → download → render (in a thread) → encode → upload, heartbeating.

The main thread owns the lease: it heartbeats every ``lease_seconds / 4`` with the task's progress, and on a 409
sets the task's cancel event, which stops the pipeline after the running step; nothing is uploaded then. The task
thread does everything else, including the upload (retried on 503 while the main thread keeps heartbeating).
"""

from __future__ import annotations

import logging
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from types import FrameType

from PIL import Image

from kinema_diffusers.engine import Cancelled, Engine, free_accelerator_memory, is_out_of_memory
from kinema_diffusers.families import SOUND
from kinema_diffusers.inputs import MAX_INPUT_BYTES, InputRejected, decode_image
from kinema_diffusers.mapping import UnsupportedRequest, total_frames
from kinema_diffusers.progress import ProgressTracker
from kinema_diffusers.protocol import (
    Claim,
    ClaimBody,
    FailBody,
    HeartbeatBody,
    LeaseLost,
    OrphansBody,
    ProtocolError,
    ReleaseBody,
    ResultRejected,
    Unavailable,
    WorkerClient,
)
from kinema_diffusers.video import MediaError, SoundtrackRequest, SoundtrackSource, mux_audio, write_mp4

log = logging.getLogger("kinema_diffusers.worker")

ENGINE_NAME = "diffusers"
MAX_REASON = 1000
MAX_BACKOFF = 30.0
# The failure reason of a sound task handed to a worker without a soundtrack source (a node that ignores
# capabilities). The node's user reads it: it says why, not where the binary was looked for (that is in our log).
NO_SOUND_REASON = ("this worker cannot make sound: Kinema's procedural soundtrack (`kinema soundtrack`) is not "
                   "available on it, so it does not advertise the 'sound' capability; a worker that does can render "
                   "this task")


@dataclass(frozen=True)
class WorkerConfig:
    """The loop's settings (command line > environment > these defaults)."""

    worker_id: str
    lease_seconds: int = 60
    claim_wait: int = 30
    shutdown_grace: float = 30.0
    heartbeat_seconds: float | None = None  # None: the claim's lease_seconds / 4
    scratch_dir: Path | None = None
    ffmpeg: str = "ffmpeg"


class Outcome(Enum):
    DONE = "done"
    LEASE_LOST = "lease lost"
    FAILED = "failed"
    CANCELED = "canceled"  # stopped for shutdown: release the lease


@dataclass
class TaskResult:
    outcome: Outcome
    reason: str = ""
    retryable: bool = True


def _reason(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


class TaskRun:
    """One claimed task, run on its own thread by ``Worker``."""

    def __init__(self, claim: Claim, engine: Engine, client: WorkerClient, sound: SoundtrackSource | None,
                 config: WorkerConfig, on_step: Callable[[int, int], None] | None = None,
                 prior_seconds_per_unit: float = 1.0) -> None:
        self.claim = claim
        self.engine = engine
        self.client = client
        self.sound = sound
        self.config = config
        self.on_step = on_step
        self.cancel = threading.Event()
        self.progress = ProgressTracker([], prior_seconds_per_unit)
        self.result: TaskResult | None = None
        self.uploaded = threading.Event()

    def run(self) -> None:
        try:
            self.result = self._run()
        except BaseException as e:  # the thread must always leave a result for the lease owner
            log.exception("task=%s crashed", self.claim.task_id)
            self.result = TaskResult(Outcome.FAILED, _reason(f"the worker crashed: {type(e).__name__}: {e}"), True)

    def _run(self) -> TaskResult:
        claim = self.claim
        task = claim.task_id
        req = claim.request
        scratch = Path(tempfile.mkdtemp(prefix=f"kinema-{task[:8]}-", dir=self.config.scratch_dir))
        try:
            try:
                if req.sound and self.sound is None:
                    raise UnsupportedRequest(NO_SOUND_REASON)
                segments = self.engine.plan(req)
                if req.has_end_image and claim.end_image is None:
                    raise UnsupportedRequest("the task has an end image but the claim names no end_image input")
                image = self._input("image", claim.image.url)
                end = self._input("end_image", claim.end_image.url) if req.has_end_image and claim.end_image else None
            except (UnsupportedRequest, InputRejected) as e:
                return TaskResult(Outcome.FAILED, _reason(str(e)), retryable=False)
            self.progress = ProgressTracker([self.engine.steps] * len(segments), self.progress.seconds_per_unit())
            log.info("task=%s rendering %d segment(s), %d frames at %d fps, steps=%d", task, len(segments),
                     total_frames(segments), self.engine.rule.fps, self.engine.steps)

            def step(segment: int, i: int) -> None:
                self.progress.step_done(segment, i)
                if self.on_step is not None:
                    self.on_step(segment, i)

            try:
                rendered = self.engine.render(req, image, end, segments, self.cancel, on_step=step,
                                              on_segment=self.progress.segment_done)
            except Cancelled:
                return TaskResult(Outcome.CANCELED)
            except (InputRejected, UnsupportedRequest) as e:
                return TaskResult(Outcome.FAILED, _reason(str(e)), retryable=False)
            except Exception as e:
                if is_out_of_memory(e):
                    free_accelerator_memory()
                    return TaskResult(Outcome.FAILED, _reason(
                        f"out of accelerator memory while rendering ({self.engine.model_name}, "
                        f"{len(segments)} segment(s)); another attempt may find the GPU free"), retryable=True)
                log.exception("task=%s render failed", task)
                return TaskResult(Outcome.FAILED, _reason(f"the model failed: {type(e).__name__}: {e}"), True)
            log.info("task=%s rendered %d frames %dx%d in %.1f s", task, len(rendered.frames), rendered.width,
                     rendered.height, rendered.times.total)
            if self.cancel.is_set():
                return TaskResult(Outcome.CANCELED)
            try:
                video = scratch / "video.mp4"
                write_mp4(rendered.frames, rendered.width, rendered.height, rendered.fps, video, self.config.ffmpeg)
                if req.sound and self.sound is not None:
                    audio = scratch / "audio.wav"
                    duration = len(rendered.frames) / rendered.fps
                    prompt = req.prompt or " ".join(s.prompt for s in (req.multi_prompt or ()))
                    self.sound.write(SoundtrackRequest(prompt, req.negative_prompt, duration, req.seed), audio)
                    muxed = scratch / "out.mp4"
                    mux_audio(video, audio, muxed, self.config.ffmpeg)
                    video = muxed
            except MediaError as e:
                return TaskResult(Outcome.FAILED, _reason(str(e)), retryable=True)
            self.progress.encoded()
            return self._upload(video)
        except LeaseLost:
            return TaskResult(Outcome.LEASE_LOST)
        except Cancelled:
            return TaskResult(Outcome.CANCELED)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _input(self, name: str, url: str) -> Image.Image:
        delay = 1.0
        while True:
            if self.cancel.is_set():
                raise Cancelled()
            try:
                data = self.client.download_url(url, MAX_INPUT_BYTES)
                return decode_image(data, name)
            except Unavailable as e:
                log.warning("task=%s input %s: %s; retrying in %.0f s", self.claim.task_id, name, e, delay)
            except ProtocolError as e:
                raise InputRejected(f"the {name} input could not be downloaded: {e}") from None
            if self.cancel.wait(delay):
                raise Cancelled()
            delay = min(MAX_BACKOFF, delay * 2)

    def _upload(self, path: Path) -> TaskResult:
        delay = 1.0
        while True:
            if self.cancel.is_set():
                return TaskResult(Outcome.CANCELED)
            try:
                self.client.upload_result(self.claim.task_id, self.claim.lease.lease_id, path)
                self.uploaded.set()
                return TaskResult(Outcome.DONE)
            except ResultRejected as e:
                return TaskResult(Outcome.FAILED, _reason(f"the node refused the video (HTTP {e.status}): {e}"),
                                  retryable=False)
            except Unavailable as e:
                log.warning("task=%s upload: %s; retrying in %.0f s", self.claim.task_id, e, delay)
            if self.cancel.wait(delay):
                return TaskResult(Outcome.CANCELED)
            delay = min(MAX_BACKOFF, delay * 2)


class Worker:
    """Claims and runs tasks one at a time until stopped."""

    def __init__(self, config: WorkerConfig, engine: Engine, client: WorkerClient, sound: SoundtrackSource | None,
                 on_step: Callable[[int, int], None] | None = None) -> None:
        self.config = config
        self.engine = engine
        self.client = client
        self.sound = sound
        self.on_step = on_step
        self.stop = threading.Event()
        self._stop_at: float | None = None
        self._seconds_per_unit = 1.0

    def request_stop(self) -> None:
        """Stop claiming; a running task may finish within the shutdown grace."""
        if self._stop_at is None:
            self._stop_at = time.monotonic()
        self.stop.set()

    def install_signal_handlers(self) -> None:
        def handler(signum: int, frame: FrameType | None) -> None:
            log.info("signal %d: no more claims; the running task has %.0f s to finish", signum,
                     self.config.shutdown_grace)
            self.request_stop()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    @property
    def capabilities(self) -> tuple[str, ...]:
        """What the claim advertises: the model's capabilities, less ``sound`` without a soundtrack source."""
        return tuple(c for c in self.engine.capabilities if c != SOUND or self.sound is not None)

    def claim_body(self) -> ClaimBody:
        return ClaimBody(worker_id=self.config.worker_id, engine=ENGINE_NAME, model=self.engine.model_name,
                         capabilities=list(self.capabilities), lease_seconds=self.config.lease_seconds,
                         wait_seconds=self.config.claim_wait)

    def sweep_orphans(self) -> None:
        delay = 1.0
        while not self.stop.is_set():
            try:
                o = self.client.orphans(OrphansBody(worker_id=self.config.worker_id))
                log.info("orphans: requeued=%d failed=%d", len(o.requeued), len(o.failed))
                return
            except Unavailable as e:
                log.warning("orphans: %s; retrying in %.0f s", e, delay)
            self.stop.wait(delay)
            delay = min(MAX_BACKOFF, delay * 2)

    def run(self, max_tasks: int | None = None) -> None:
        """The loop; returns when stopped (or after ``max_tasks`` tasks). ProtocolError (e.g. 403) propagates."""
        self.sweep_orphans()
        done = 0
        delay = 1.0
        body = self.claim_body()
        while not self.stop.is_set() and (max_tasks is None or done < max_tasks):
            try:
                claim = self.client.claim(body)
                delay = 1.0
            except Unavailable as e:
                wait = e.retry_after or delay
                log.warning("claim: %s; retrying in %.0f s", e, wait)
                self.stop.wait(wait)
                delay = min(MAX_BACKOFF, delay * 2)
                continue
            if claim is None:
                continue
            if self.stop.is_set():
                log.info("task=%s claimed while stopping: releasing it", claim.task_id)
                self._release(claim)
                break
            self.run_task(claim)
            done += 1

    def run_task(self, claim: Claim) -> TaskResult:
        task = claim.task_id
        log.info("task=%s claimed attempt=%d/%d lease=%ds", task, claim.attempt, claim.max_attempts,
                 claim.lease_seconds)
        run = TaskRun(claim, self.engine, self.client, self.sound, self.config, self.on_step, self._seconds_per_unit)
        thread = threading.Thread(target=run.run, name=f"task-{task[:8]}", daemon=True)
        thread.start()
        interval = self.config.heartbeat_seconds or max(0.5, claim.lease_seconds / 4)
        lost = False
        while thread.is_alive():
            thread.join(interval)
            if not thread.is_alive():
                break
            if self._stop_at is not None and time.monotonic() - self._stop_at > self.config.shutdown_grace:
                if not run.cancel.is_set():
                    log.info("task=%s did not finish within the shutdown grace: stopping it", task)
                    run.cancel.set()
                continue
            if lost or run.uploaded.is_set():
                continue
            try:
                self.client.heartbeat(task, HeartbeatBody(lease_id=claim.lease.lease_id,
                                                          progress_percent=run.progress.percent(),
                                                          eta_seconds=run.progress.eta_seconds(),
                                                          lease_seconds=claim.lease_seconds))
            except LeaseLost:
                log.info("task=%s lease lost (expired, canceled or rescued): stopping and discarding", task)
                lost = True
                run.cancel.set()
            except (Unavailable, ProtocolError) as e:
                log.warning("task=%s heartbeat: %s", task, e)
        result = run.result or TaskResult(Outcome.FAILED, "the task thread left no result", True)
        self._seconds_per_unit = run.progress.seconds_per_unit()
        if lost and result.outcome is not Outcome.DONE:
            result = TaskResult(Outcome.LEASE_LOST)
        self._finish(claim, result)
        return result

    def _finish(self, claim: Claim, result: TaskResult) -> None:
        task = claim.task_id
        if result.outcome is Outcome.DONE:
            log.info("task=%s uploaded", task)
        elif result.outcome is Outcome.LEASE_LOST:
            log.info("task=%s discarded (lease lost)", task)
        elif result.outcome is Outcome.CANCELED:
            self._release(claim)
        else:
            log.info("task=%s failed retryable=%s reason=%s", task, result.retryable, result.reason)
            try:
                status = self.client.fail(task, FailBody(lease_id=claim.lease.lease_id, reason=result.reason,
                                                         retryable=result.retryable))
                log.info("task=%s is now %s", task, status)
            except LeaseLost:
                log.info("task=%s fail: lease already lost", task)
            except (Unavailable, ProtocolError) as e:
                log.warning("task=%s fail could not be sent (%s): the lease will expire", task, e)

    def _release(self, claim: Claim) -> None:
        try:
            self.client.release(claim.task_id, ReleaseBody(lease_id=claim.lease.lease_id))
            log.info("task=%s released", claim.task_id)
        except LeaseLost:
            log.info("task=%s release: lease already lost", claim.task_id)
        except (Unavailable, ProtocolError) as e:
            log.warning("task=%s release could not be sent (%s): the lease will expire", claim.task_id, e)
