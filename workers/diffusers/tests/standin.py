"""A stand-in Kinema node on 127.0.0.1 that speaks the worker protocol and records what the worker sent."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from kinema_diffusers.protocol import TaskRequest
from tests.helpers import request_json

TOKEN = "kwt_" + "t" * 43


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any  # parsed JSON, or bytes for the result upload


@dataclass
class StandIn:
    """Hands out the queued tasks once each and answers every other call as scripted."""

    tasks: list[tuple[TaskRequest, dict[str, bytes]]] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    heartbeat_status: Callable[[dict[str, Any]], int] = lambda body: 200
    result_statuses: list[int] = field(default_factory=list)  # consumed per PUT; 200 when empty
    lease_seconds: int = 8
    lock: threading.Lock = field(default_factory=threading.Lock)
    leases: dict[str, str] = field(default_factory=dict)  # task id → lease id

    def of(self, method: str, suffix: str) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.method == method and c.path.endswith(suffix)]


def serve(state: StandIn) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in two writes: without this, Nagle + delayed ACK add 40 ms per answer.
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _send(self, status: int, body: Any = None) -> None:
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        def _authorized(self) -> bool:
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._send(403, {"code": 403, "reason": "INVALID_WORKER_TOKEN", "message": "no", "metadata": {}})
                return False
            return True

        def do_GET(self) -> None:
            url = urlparse(self.path)
            with state.lock:
                state.calls.append(Call("GET", url.path, parse_qs(url.query), None))
            if not self._authorized():
                return
            parts = url.path.split("/")
            task_id, name = parts[-3], parts[-1]
            data = state_inputs.get((task_id, name))
            if data is None:
                self._send(404, {"code": 404, "reason": "INPUT_NOT_FOUND", "message": name, "metadata": {}})
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_PUT(self) -> None:
            url = urlparse(self.path)
            data = self._body()
            with state.lock:
                state.calls.append(Call("PUT", url.path, parse_qs(url.query), data))
                status = state.result_statuses.pop(0) if state.result_statuses else 200
            if not self._authorized():
                return
            self._send(status, {"task_id": url.path.split("/")[-2], "status": "TASK_STATUS_SUCCEED",
                                "lease_seconds": 0} if status == 200 else
                       {"code": status, "reason": "X", "message": "scripted", "metadata": {}})

        def do_POST(self) -> None:
            url = urlparse(self.path)
            raw = self._body()
            body = json.loads(raw) if raw else {}
            with state.lock:
                state.calls.append(Call("POST", url.path, parse_qs(url.query), body))
            if not self._authorized():
                return
            if url.path.endswith("/orphans"):
                self._send(200, {"requeued": [], "failed": []})
            elif url.path.endswith("/claim"):
                with state.lock:
                    task = state.tasks.pop(0) if state.tasks else None
                if task is None:
                    self._send(204)
                    return
                req, inputs = task
                task_id, lease_id = str(uuid.uuid4()), str(uuid.uuid4())
                for name, data in inputs.items():
                    state_inputs[(task_id, name)] = data
                state.leases[task_id] = lease_id
                base = f"/internal/v1/worker/tasks/{task_id}/inputs"
                self._send(200, {
                    "task": {"task_id": task_id, "request": request_json(req), "attempt": 1, "max_attempts": 3,
                             "eta_seconds": 3, "created_at_ms": 0},
                    "lease": {"task_id": task_id, "lease_id": lease_id, "worker_id": "remote/x/" + body["worker_id"],
                              "attempt": 1},
                    "lease_seconds": state.lease_seconds,
                    "inputs": {
                        "image": {"url": f"{base}/image?lease_id={lease_id}", "content_type": "image/png"},
                        "end_image": {"url": f"{base}/end_image?lease_id={lease_id}", "content_type": "image/png"}
                        if "end_image" in inputs else None,
                    },
                })
            elif url.path.endswith("/heartbeat"):
                status = state.heartbeat_status(body)
                self._send(status, {"task_id": "x", "status": "TASK_STATUS_PROCESSING", "lease_seconds": 8}
                           if status == 200 else {"code": 409, "reason": "LEASE_LOST", "message": "gone",
                                                  "metadata": {}})
            elif url.path.endswith("/fail"):
                self._send(200, {"task_id": "x", "status": "TASK_STATUS_FAILED"})
            elif url.path.endswith("/release"):
                self._send(200, {"task_id": "x", "status": "TASK_STATUS_QUEUED", "lease_seconds": 0})
            else:
                self._send(404, {"code": 404, "reason": "API_NOT_FOUND", "message": "", "metadata": {}})

    state_inputs: dict[tuple[str, str], bytes] = {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"
