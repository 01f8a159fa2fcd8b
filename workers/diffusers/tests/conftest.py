"""Shared fixtures: tiny models of each family written by the tests themselves, and the engines loaded from them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from kinema_diffusers.engine import Engine, EngineOptions
from kinema_diffusers.tiny import make_tiny_model

# The machine's cores are shared (Swift builds run beside these tests).
torch.set_num_threads(int(os.environ.get("KINEMA_TEST_THREADS", "2")))

TEST_MAX_AREA = 64 * 64


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny-models")
    return {family: make_tiny_model(family, root / family) for family in ("wan-ti2v", "wan-flf2v", "ltx")}


def load_engine(model_dir: Path, steps: int = 2, **kwargs: object) -> Engine:
    options = EngineOptions(device="cpu", steps=steps, max_area=TEST_MAX_AREA, **kwargs)  # type: ignore[arg-type]
    return Engine.load(model_dir, options)


@pytest.fixture(scope="session")
def ti2v(tiny_models: dict[str, Path]) -> Engine:
    return load_engine(tiny_models["wan-ti2v"])


@pytest.fixture(scope="session")
def flf2v(tiny_models: dict[str, Path]) -> Engine:
    return load_engine(tiny_models["wan-flf2v"])


@pytest.fixture(scope="session")
def ltx(tiny_models: dict[str, Path]) -> Engine:
    return load_engine(tiny_models["ltx"])


@pytest.fixture()
def scratch(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
