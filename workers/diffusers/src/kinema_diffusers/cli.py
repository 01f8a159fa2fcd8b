"""``kinema-diffusers-worker``: run | make-tiny-model | download | bench.

Every ``run`` option can also come from the environment (``KINEMA_…``); the command line wins. Prefer
``KINEMA_WORKER_TOKEN`` for the token, so it does not show in ``ps``.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import threading
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger("kinema_diffusers")


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _env_int(name: str, default: int | None) -> int | None:
    value = _env(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise SystemExit(f"kinema-diffusers-worker: {name}={value!r} is not an integer") from None


def _env_bool(name: str) -> bool:
    return (_env(name) or "").lower() in ("1", "true", "yes", "on")


def _default_device() -> str:
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"


def _default_worker_id() -> str:
    host = "".join(c for c in socket.gethostname() if 33 <= ord(c) < 127) or "worker"
    return f"{host}-diffusers"[:128]


def _add_engine_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=_env("KINEMA_MODEL_DIR"), help="model directory (env KINEMA_MODEL_DIR)")
    p.add_argument("--device", default=_env("KINEMA_DEVICE"), help="cuda, cuda:N or cpu (env KINEMA_DEVICE; "
                   "default cuda when available)")
    p.add_argument("--steps", type=int, default=_env_int("KINEMA_STEPS", None),
                   help="denoising steps (env KINEMA_STEPS; default the family's)")
    p.add_argument("--offload", action="store_true", default=_env_bool("KINEMA_OFFLOAD"),
                   help="model CPU offload: fits a GPU with less memory, slower (env KINEMA_OFFLOAD=1)")
    p.add_argument("--compile", action="store_true", default=_env_bool("KINEMA_COMPILE"),
                   help="torch.compile the transformer (env KINEMA_COMPILE=1)")
    p.add_argument("--distilled", action="store_true", default=_env_bool("KINEMA_DISTILLED"),
                   help="a few-step distilled checkpoint: guidance 1, cfg_scale ignored (env KINEMA_DISTILLED=1)")
    p.add_argument("--max-area", type=int, default=_env_int("KINEMA_MAX_AREA", None),
                   help="cap on output width×height in pixels (env KINEMA_MAX_AREA; default the 720p class)")
    p.add_argument("--max-segment-frames", type=int, default=_env_int("KINEMA_MAX_SEGMENT_FRAMES", None),
                   help="cap on frames per pipeline call, below the model's native length "
                        "(env KINEMA_MAX_SEGMENT_FRAMES)")
    p.add_argument("--threads", type=int, default=_env_int("KINEMA_TORCH_THREADS", None),
                   help="torch CPU threads (env KINEMA_TORCH_THREADS)")
    p.add_argument("--log-level", default=_env("KINEMA_LOG_LEVEL", "info"), help="debug, info, warning, error")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kinema-diffusers-worker", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="load the model and work for a Kinema node")
    run.add_argument("--server", default=_env("KINEMA_SERVER"), help="node base URL (env KINEMA_SERVER)")
    run.add_argument("--worker-token", default=_env("KINEMA_WORKER_TOKEN"),
                     help="kwt_… worker token (env KINEMA_WORKER_TOKEN, preferred)")
    run.add_argument("--worker-id", default=_env("KINEMA_WORKER_ID"),
                     help="stable id of this worker (env KINEMA_WORKER_ID; default <hostname>-diffusers)")
    run.add_argument("--model-name", default=_env("KINEMA_MODEL_NAME"),
                     help="model name sent with claims (env KINEMA_MODEL_NAME; default the directory's name)")
    run.add_argument("--lease-seconds", type=int, default=_env_int("KINEMA_LEASE_SECONDS", 60),
                     help="lease asked for at claim (env KINEMA_LEASE_SECONDS; default 60)")
    run.add_argument("--claim-wait", type=int, default=_env_int("KINEMA_CLAIM_WAIT", 30),
                     help="long-poll seconds per claim, 0…30 (env KINEMA_CLAIM_WAIT; default 30)")
    run.add_argument("--shutdown-grace", type=float, default=float(_env("KINEMA_SHUTDOWN_GRACE", "30") or 30),
                     help="seconds a running task may take after SIGTERM (env KINEMA_SHUTDOWN_GRACE; default 30)")
    run.add_argument("--heartbeat-seconds", type=float,
                     default=float(v) if (v := _env("KINEMA_HEARTBEAT_SECONDS")) else None,
                     help="heartbeat interval (env KINEMA_HEARTBEAT_SECONDS; default lease/4)")
    run.add_argument("--kinema-bin", default=_env("KINEMA_BIN", "kinema"),
                     help="kinema binary for `kinema soundtrack` (env KINEMA_BIN; default kinema on PATH)")
    run.add_argument("--scratch-dir", default=_env("KINEMA_SCRATCH_DIR"), help="temp folder for MP4s")
    run.add_argument("--no-warm-up", action="store_true", help="skip the warm-up clip at start")
    _add_engine_options(run)

    tiny = sub.add_parser("make-tiny-model", help="write a tiny random model of a family (tests, smoke runs)")
    tiny.add_argument("--family", required=True, choices=["wan-ti2v", "wan-flf2v", "ltx"])
    tiny.add_argument("--out", required=True, type=Path)

    dl = sub.add_parser("download", help="download a model from the Hugging Face Hub into a directory")
    dl.add_argument("model_id", help="e.g. Wan-AI/Wan2.2-TI2V-5B-Diffusers, Lightricks/LTX-Video-0.9.7-dev")
    dl.add_argument("--dir", required=True, type=Path)
    dl.add_argument("--revision", default=None)

    bench = sub.add_parser("bench", help="seconds per stage for one clip")
    bench.add_argument("--duration", type=float, default=5.0)
    bench.add_argument("--width", type=int, default=1280, help="input image width (aspect of the output)")
    bench.add_argument("--height", type=int, default=720)
    _add_engine_options(bench)
    return parser


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("diffusers", "transformers", "urllib3", "httpx"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    # transformers announces at import that torchvision is absent (the PIL image processors are used instead).
    warnings.filterwarnings("ignore", message=".*requires torchvision.*")
    # Loading bars are not log lines (one line per task event).
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    # Their own verbosity setting (importing them resets their loggers' levels to WARNING).
    diffusers_logging.set_verbosity_error()
    transformers_logging.set_verbosity_error()


def _engine_options(args: argparse.Namespace) -> object:
    from kinema_diffusers.engine import EngineOptions

    return EngineOptions(device=args.device or _default_device(), steps=args.steps, offload=args.offload,
                         compile=args.compile, distilled=args.distilled, max_area=args.max_area,
                         max_segment_frames=args.max_segment_frames, threads=args.threads)


def cmd_run(args: argparse.Namespace) -> int:
    missing = [flag for flag, value in (("--server", args.server), ("--worker-token", args.worker_token),
                                        ("--model", args.model)) if not value]
    if missing:
        print(f"kinema-diffusers-worker run: missing {', '.join(missing)} (or KINEMA_SERVER, KINEMA_WORKER_TOKEN, "
              "KINEMA_MODEL_DIR)", file=sys.stderr)
        return 2
    _setup_logging(args.log_level)
    from kinema_diffusers.engine import Engine, EngineOptions
    from kinema_diffusers.families import ModelDirError
    from kinema_diffusers.protocol import ProtocolError, WorkerClient
    from kinema_diffusers.video import soundtrack_source
    from kinema_diffusers.worker import Worker, WorkerConfig

    options = _engine_options(args)
    assert isinstance(options, EngineOptions)
    started = time.monotonic()
    try:
        engine = Engine.load(Path(args.model), options, args.model_name)
    except ModelDirError as e:
        print(f"kinema-diffusers-worker: {e}", file=sys.stderr)
        return 2
    load_seconds = time.monotonic() - started
    warm = 0.0 if args.no_warm_up else engine.warm_up()
    sound = soundtrack_source(args.kinema_bin)
    config = WorkerConfig(worker_id=args.worker_id or _default_worker_id(), lease_seconds=args.lease_seconds,
                          claim_wait=max(0, min(30, args.claim_wait)), shutdown_grace=args.shutdown_grace,
                          heartbeat_seconds=args.heartbeat_seconds,
                          scratch_dir=Path(args.scratch_dir) if args.scratch_dir else None)
    client = WorkerClient(args.server, args.worker_token)
    worker = Worker(config, engine, client, sound)
    worker.install_signal_handlers()
    log.info("ready model=%s family=%s device=%s steps=%d fps=%d capabilities=%s sound=%s worker_id=%s server=%s "
             "load=%.1fs warm-up=%.1fs", engine.model_name, engine.family.name, options.device, engine.steps,
             engine.rule.fps, ",".join(worker.capabilities), sound.name if sound else "none", config.worker_id,
             args.server, load_seconds, warm)
    try:
        worker.run()
    except ProtocolError as e:
        print(f"kinema-diffusers-worker: the node at {args.server} refused the worker: {e}", file=sys.stderr)
        return 1
    finally:
        client.close()
    log.info("stopped")
    return 0


def cmd_make_tiny_model(args: argparse.Namespace) -> int:
    from kinema_diffusers.tiny import make_tiny_model

    out = make_tiny_model(args.family, args.out)
    print(out)
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from huggingface_hub import snapshot_download

    path = snapshot_download(repo_id=args.model_id, local_dir=str(args.dir), revision=args.revision)
    print(path)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    _setup_logging(args.log_level)
    if not args.model:
        print("kinema-diffusers-worker bench: missing --model (or KINEMA_MODEL_DIR)", file=sys.stderr)
        return 2
    import tempfile

    from PIL import Image

    from kinema_diffusers.engine import Engine, EngineOptions
    from kinema_diffusers.families import ModelDirError
    from kinema_diffusers.protocol import TaskRequest
    from kinema_diffusers.video import write_mp4

    options = _engine_options(args)
    assert isinstance(options, EngineOptions)
    t0 = time.monotonic()
    try:
        engine = Engine.load(Path(args.model), options)
    except ModelDirError as e:
        print(f"kinema-diffusers-worker: {e}", file=sys.stderr)
        return 2
    load = time.monotonic() - t0
    fps = engine.rule.fps
    request = TaskRequest(prompt="a slow camera push in on a lighthouse at dusk, waves rolling in",
                          negative_prompt=None, duration=round(args.duration), cfg_scale=0.5, sound=False,
                          multi_prompt=None, seed=42, has_end_image=engine.family.requires_end_image, fps=fps,
                          frame_count=round(args.duration * fps))
    image = Image.new("RGB", (args.width, args.height), (90, 120, 160))
    segments = engine.plan(request)
    t1 = time.monotonic()
    result = engine.render(request, image, image if request.has_end_image else None, segments, threading.Event())
    render = time.monotonic() - t1
    with tempfile.TemporaryDirectory() as tmp:
        t2 = time.monotonic()
        write_mp4(result.frames, result.width, result.height, fps, Path(tmp) / "bench.mp4")
        encode = time.monotonic() - t2
    times = result.times
    steps = times.steps
    rows = [
        ("model", f"{engine.model_name} ({engine.family.name}) on {options.device}"),
        ("clip", f"{len(result.frames)} frames {result.width}x{result.height} @ {fps} fps, "
                 f"{len(segments)} segment(s), {engine.steps} steps"),
        ("load", f"{load:.2f} s"),
        ("text/image encode", f"{times.encode:.2f} s"),
        ("denoise per step", f"{(sum(steps) / len(steps)) if steps else 0:.3f} s"),
        ("denoise total", f"{sum(steps):.2f} s"),
        ("VAE decode", f"{times.decode:.2f} s"),
        ("MP4 encode", f"{encode:.2f} s"),
        ("per clip", f"{render + encode:.2f} s"),
    ]
    for name, value in rows:
        print(f"{name:<18} {value}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    commands = {"run": cmd_run, "make-tiny-model": cmd_make_tiny_model, "download": cmd_download,
                "bench": cmd_bench}
    return commands[args.command](args)


if __name__ == "__main__":
    raise SystemExit(main())
