"""Kinema's remote worker protocol (docs/worker-protocol.md): typed bodies and one small HTTP client.

Every call maps the node's answers onto values or the exceptions below; nothing here knows about models.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import requests

log = logging.getLogger("kinema_diffusers.protocol")

API = "/internal/v1/worker"


class ProtocolError(Exception):
    """The node answered something this worker cannot go on from (e.g. 401/403, or a malformed body)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Unavailable(Exception):
    """The node cannot be reached or answered 503/5xx: back off and retry."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LeaseLost(Exception):
    """409 LEASE_LOST: the lease is gone (expired, rescued, canceled, finished). Stop and discard."""


class ResultRejected(Exception):
    """400 INVALID_RESULT or 413 RESULT_TOO_LARGE for an upload: another attempt would not fix it."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


# MARK: Bodies


@dataclass(frozen=True)
class Shot:
    """One ``multi_prompt`` entry."""

    prompt: str
    duration: int


@dataclass(frozen=True)
class TaskRequest:
    """The claim's ``request``: the validated request exactly as the node accepted it."""

    prompt: str | None
    negative_prompt: str | None
    duration: int
    cfg_scale: float
    sound: bool
    multi_prompt: tuple[Shot, ...] | None
    seed: int
    has_end_image: bool
    fps: int
    frame_count: int

    @staticmethod
    def from_json(d: Mapping[str, Any]) -> TaskRequest:
        shots: tuple[Shot, ...] | None = None
        raw_shots = d.get("multi_prompt")
        if raw_shots is not None:
            if not isinstance(raw_shots, list):
                raise ProtocolError("request.multi_prompt is not a list")
            shots = tuple(Shot(prompt=_str(s, "prompt"), duration=_int(s, "duration")) for s in raw_shots)
        prompt = d.get("prompt")
        negative = d.get("negative_prompt")
        if prompt is not None and not isinstance(prompt, str):
            raise ProtocolError("request.prompt is not a string")
        if negative is not None and not isinstance(negative, str):
            raise ProtocolError("request.negative_prompt is not a string")
        cfg = d.get("cfg_scale")
        if not isinstance(cfg, int | float) or isinstance(cfg, bool):
            raise ProtocolError("request.cfg_scale is not a number")
        return TaskRequest(
            prompt=prompt,
            negative_prompt=negative,
            duration=_int(d, "duration"),
            cfg_scale=float(cfg),
            sound=_bool(d, "sound"),
            multi_prompt=shots,
            seed=_int(d, "seed"),
            has_end_image=_bool(d, "has_end_image"),
            fps=_int(d, "fps"),
            frame_count=_int(d, "frame_count"),
        )


@dataclass(frozen=True)
class Lease:
    task_id: str
    lease_id: str
    worker_id: str
    attempt: int


@dataclass(frozen=True)
class InputRef:
    url: str
    content_type: str


@dataclass(frozen=True)
class Claim:
    """A 200 answer to ``POST /claim``."""

    task_id: str
    request: TaskRequest
    attempt: int
    max_attempts: int
    lease: Lease
    lease_seconds: int
    image: InputRef
    end_image: InputRef | None

    @staticmethod
    def from_json(d: Mapping[str, Any]) -> Claim:
        task = _obj(d, "task")
        lease = _obj(d, "lease")
        inputs = _obj(d, "inputs")
        end = inputs.get("end_image")
        return Claim(
            task_id=_str(task, "task_id"),
            request=TaskRequest.from_json(_obj(task, "request")),
            attempt=_int(task, "attempt"),
            max_attempts=_int(task, "max_attempts"),
            lease=Lease(
                task_id=_str(lease, "task_id"),
                lease_id=_str(lease, "lease_id"),
                worker_id=_str(lease, "worker_id"),
                attempt=_int(lease, "attempt"),
            ),
            lease_seconds=_int(d, "lease_seconds"),
            image=_input(_obj(inputs, "image")),
            end_image=_input(end) if isinstance(end, dict) else None,
        )


@dataclass(frozen=True)
class ClaimBody:
    """``POST /claim``. ``engine``, ``model`` and ``capabilities`` let the node route tasks to this worker."""

    worker_id: str
    engine: str
    model: str
    capabilities: list[str]
    lease_seconds: int
    wait_seconds: int


@dataclass(frozen=True)
class HeartbeatBody:
    lease_id: str
    progress_percent: int
    eta_seconds: int
    lease_seconds: int


@dataclass(frozen=True)
class FailBody:
    lease_id: str
    reason: str
    retryable: bool


@dataclass(frozen=True)
class ReleaseBody:
    lease_id: str


@dataclass(frozen=True)
class OrphansBody:
    worker_id: str


@dataclass(frozen=True)
class Orphans:
    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


# MARK: Client


class WorkerClient:
    """One node's worker routes, with the worker token on every request."""

    def __init__(self, server: str, token: str, timeout: float = 30.0) -> None:
        self.server = server.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"Bearer {token}"

    def close(self) -> None:
        self._session.close()

    def orphans(self, body: OrphansBody) -> Orphans:
        r = self._call("POST", f"{API}/orphans", body)
        d = _json(r)
        return Orphans(requeued=list(d.get("requeued") or []), failed=list(d.get("failed") or []))

    def claim(self, body: ClaimBody) -> Claim | None:
        """A claimed task, or None when none was queued during the wait (204)."""
        r = self._call("POST", f"{API}/claim", body, timeout=body.wait_seconds + self.timeout)
        if r.status_code == 204:
            return None
        return Claim.from_json(_json(r))

    def heartbeat(self, task_id: str, body: HeartbeatBody) -> None:
        self._call("POST", f"{API}/tasks/{task_id}/heartbeat", body)

    def fail(self, task_id: str, body: FailBody) -> str:
        """Fails the attempt; returns the task's status afterwards."""
        return str(_json(self._call("POST", f"{API}/tasks/{task_id}/fail", body)).get("status", ""))

    def release(self, task_id: str, body: ReleaseBody) -> None:
        self._call("POST", f"{API}/tasks/{task_id}/release", body)

    def download_url(self, url: str, limit_bytes: int) -> bytes:
        """An input's bytes from the claim's ``url`` (relative to the node), read up to ``limit_bytes`` + 1 bytes
        (the caller judges the size)."""
        try:
            with self._session.get(self.server + url, stream=True, timeout=self.timeout) as r:
                self._check(r)
                data = bytearray()
                for chunk in r.iter_content(64 * 1024):
                    data += chunk
                    if len(data) > limit_bytes:
                        break
                return bytes(data)
        except requests.RequestException as e:
            raise Unavailable(f"input download failed: {type(e).__name__}") from e

    def upload_result(self, task_id: str, lease_id: str, path: Path) -> None:
        """Streams the MP4 to ``PUT /result``; raises LeaseLost, ResultRejected or Unavailable."""
        url = f"{self.server}{API}/tasks/{task_id}/result"
        try:
            with path.open("rb") as f:
                r = self._session.put(
                    url,
                    params={"lease_id": lease_id},
                    data=f,
                    headers={"Content-Type": "video/mp4", "Content-Length": str(path.stat().st_size)},
                    timeout=max(self.timeout, 120.0),
                )
        except requests.RequestException as e:
            raise Unavailable(f"result upload failed: {type(e).__name__}") from e
        if r.status_code in (400, 413):
            raise ResultRejected(_message(r), r.status_code)
        self._check(r)

    def _call(self, method: str, path: str, body: Any, timeout: float | None = None) -> requests.Response:
        try:
            r = self._session.request(method, self.server + path, json=asdict(body), timeout=timeout or self.timeout)
        except requests.RequestException as e:
            raise Unavailable(f"{method} {path}: {type(e).__name__}") from e
        self._check(r)
        return r

    @staticmethod
    def _check(r: requests.Response) -> None:
        if r.status_code < 300:
            return
        if r.status_code == 409:
            raise LeaseLost(_message(r))
        if r.status_code >= 500:
            retry = r.headers.get("Retry-After")
            raise Unavailable(f"HTTP {r.status_code}: {_message(r)}",
                              retry_after=float(retry) if retry and retry.isdigit() else None)
        raise ProtocolError(f"HTTP {r.status_code}: {_message(r)}", status=r.status_code)


# MARK: JSON helpers


def _message(r: requests.Response) -> str:
    try:
        d = r.json()
    except ValueError:
        return r.text[:200]
    if isinstance(d, dict):
        return f"{d.get('reason', '')}: {d.get('message', '')}"[:300]
    return str(d)[:200]


def _json(r: requests.Response) -> dict[str, Any]:
    try:
        d = r.json()
    except ValueError as e:
        raise ProtocolError(f"HTTP {r.status_code}: the body is not JSON") from e
    if not isinstance(d, dict):
        raise ProtocolError(f"HTTP {r.status_code}: the body is not a JSON object")
    return d


def _obj(d: Mapping[str, Any], key: str) -> dict[str, Any]:
    v = d.get(key)
    if not isinstance(v, dict):
        raise ProtocolError(f"'{key}' is missing or not an object")
    return v


def _str(d: Mapping[str, Any], key: str) -> str:
    v = d.get(key)
    if not isinstance(v, str):
        raise ProtocolError(f"'{key}' is missing or not a string")
    return v


def _int(d: Mapping[str, Any], key: str) -> int:
    v = d.get(key)
    if not isinstance(v, int) or isinstance(v, bool):
        raise ProtocolError(f"'{key}' is missing or not an integer")
    return v


def _bool(d: Mapping[str, Any], key: str) -> bool:
    v = d.get(key)
    if not isinstance(v, bool):
        raise ProtocolError(f"'{key}' is missing or not a boolean")
    return v


def _input(d: Mapping[str, Any]) -> InputRef:
    return InputRef(url=_str(d, "url"), content_type=str(d.get("content_type") or ""))
