"""Family detection from a model directory, and start-up failures on broken directories."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kinema_diffusers.families import LTX, WAN_TI2V, ModelDirError, detect_family
from tests.conftest import load_engine


def copy_model(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_each_tiny_model_is_detected_as_its_family(tiny_models: dict[str, Path]) -> None:
    assert detect_family(tiny_models["wan-ti2v"]) == WAN_TI2V
    flf = detect_family(tiny_models["wan-flf2v"])
    assert flf.name == "wan-flf2v" and flf.requires_end_image  # the Wan 2.1 FLF2V layout
    assert detect_family(tiny_models["ltx"]) == LTX


def test_missing_directory_fails_with_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(ModelDirError, match="does not exist"):
        detect_family(tmp_path / "nope")


def test_missing_model_index_fails_with_a_clear_message(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    d = copy_model(tiny_models["ltx"], tmp_path / "m")
    (d / "model_index.json").unlink()
    with pytest.raises(ModelDirError, match=r"model_index\.json is missing"):
        load_engine(d)


def test_garbled_model_index_fails_with_a_clear_message(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    d = copy_model(tiny_models["ltx"], tmp_path / "m")
    (d / "model_index.json").write_text('{"_class_name": "LTXConditionPipeline", ')
    with pytest.raises(ModelDirError, match="not valid JSON"):
        load_engine(d)


def test_missing_component_fails_with_a_clear_message(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    d = copy_model(tiny_models["wan-ti2v"], tmp_path / "m")
    shutil.rmtree(d / "vae")
    with pytest.raises(ModelDirError, match=r"component 'vae'.*missing"):
        load_engine(d)


def test_corrupt_weights_fail_at_load_not_mid_task(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    d = copy_model(tiny_models["ltx"], tmp_path / "m")
    weights = next((d / "transformer").glob("*.safetensors"))
    weights.write_bytes(b"garbage" * 10)
    with pytest.raises(ModelDirError, match="could not load the ltx model"):
        load_engine(d)


def test_unsupported_pipeline_is_refused(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    d = copy_model(tiny_models["ltx"], tmp_path / "m")
    index = (d / "model_index.json").read_text().replace("LTXConditionPipeline", "StableDiffusionPipeline")
    (d / "model_index.json").write_text(index)
    with pytest.raises(ModelDirError, match="unsupported model"):
        detect_family(d)


def test_model_name_sent_with_claims_is_printable_ascii() -> None:
    from kinema_diffusers.engine import claim_model_name

    assert claim_model_name("wan22-ti2v") == "wan22-ti2v"
    assert claim_model_name("модель") == "model"
    assert claim_model_name("Wan 2.2 ✓ TI2V") == "Wan 2.2  TI2V"
    assert len(claim_model_name("x" * 500)) == 200
