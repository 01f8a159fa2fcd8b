"""Tiny models are deterministic: the same family gives the same weights, so tests are reproducible."""

from __future__ import annotations

import pytest
import torch

from kinema_diffusers.tiny import build_tiny_pipeline


@pytest.mark.parametrize("family", ["wan-ti2v", "wan-flf2v", "ltx"])
def test_tiny_model_weights_are_the_same_every_time(family: str) -> None:
    a = build_tiny_pipeline(family)
    b = build_tiny_pipeline(family)
    for name in ("transformer", "vae", "text_encoder"):
        sa, sb = getattr(a, name).state_dict(), getattr(b, name).state_dict()
        assert sa.keys() == sb.keys()
        assert all(torch.equal(sa[k], sb[k]) for k in sa), f"{family} {name} differs"
    assert not a.text_encoder.training  # built in code: eval() (dropout off)


def test_unknown_family_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown family"):
        build_tiny_pipeline("sdxl")
