"""Tiny randomly initialised models of each family, written with ``save_pretrained`` (for tests and smoke runs).

The component configs follow diffusers' own fast tests (``tests/pipelines/wan/``, ``tests/pipelines/ltx/``), with
the real models' compression ratios kept where it is cheap (Wan 2.2 TI2V: 16× VAE + 2× patch = 32; Wan 2.1: 8× + 2×
= 16; LTX: 8 frames per latent frame, 32 pixels per latent pixel), so the frame and size rules are the families'.
The text encoder is a small UMT5/T5 and the tokenizer a Unigram vocabulary built in memory (no hub download).
Everything is seeded: the same family gives the same weights.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import torch

TINY_FAMILIES = ("wan-ti2v", "wan-flf2v", "ltx")
TEXT_DIM = 32


def _tokenizer() -> Any:
    from transformers import T5Tokenizer

    pieces = ["<pad>", "</s>", "<unk>", "▁"]
    pieces += [c for c in string.printable if not c.isspace()]
    pieces += ["▁" + c for c in string.ascii_lowercase]
    vocab = [(p, 0.0 if i < 3 else -float(i)) for i, p in enumerate(pieces)]
    return T5Tokenizer(vocab=vocab, extra_ids=0)


def _text_encoder(umt5: bool, vocab_size: int) -> Any:
    from transformers import T5Config, T5EncoderModel, UMT5Config, UMT5EncoderModel

    kwargs: dict[str, Any] = {"vocab_size": vocab_size, "d_model": TEXT_DIM, "d_ff": 37, "d_kv": 8, "num_heads": 4,
                              "num_layers": 2, "relative_attention_num_buckets": 8, "dropout_rate": 0.0}
    torch.manual_seed(0)
    if umt5:
        return UMT5EncoderModel(UMT5Config(**kwargs)).eval()
    return T5EncoderModel(T5Config(**kwargs)).eval()


def _wan_transformer(in_channels: int, out_channels: int, image_dim: int | None = None,
                     pos_embed_seq_len: int | None = None) -> Any:
    from diffusers import WanTransformer3DModel

    torch.manual_seed(0)
    return WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=in_channels,
        out_channels=out_channels, text_dim=TEXT_DIM, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True,
        qk_norm="rms_norm_across_heads", rope_max_seq_len=32, image_dim=image_dim,
        pos_embed_seq_len=pos_embed_seq_len,
    ).eval()


def build_tiny_pipeline(family: str) -> Any:
    """A tiny pipeline of ``family`` (``wan-ti2v``, ``wan-flf2v`` or ``ltx``), in eval mode, seeded."""
    import diffusers

    tokenizer = _tokenizer()
    vocab_size = len(tokenizer)
    if family == "wan-ti2v":
        torch.manual_seed(0)
        vae = diffusers.AutoencoderKLWan(
            base_dim=3, z_dim=48, in_channels=12, out_channels=12, is_residual=True, patch_size=2,
            latents_mean=[0.0] * 48, latents_std=[1.0] * 48, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
            scale_factor_spatial=16, scale_factor_temporal=4, temperal_downsample=[False, True, True],
        ).eval()
        scheduler = diffusers.UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True,
                                                     flow_shift=5.0)
        return diffusers.WanImageToVideoPipeline(
            transformer=_wan_transformer(48, 48), vae=vae, scheduler=scheduler,
            text_encoder=_text_encoder(True, vocab_size), tokenizer=tokenizer, transformer_2=None,
            image_encoder=None, image_processor=None, boundary_ratio=None, expand_timesteps=True,
        )
    if family == "wan-flf2v":
        from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

        torch.manual_seed(0)
        vae = diffusers.AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                                         temperal_downsample=[False, True, True]).eval()
        scheduler = diffusers.UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True,
                                                     flow_shift=16.0)
        torch.manual_seed(0)
        clip_config = CLIPVisionConfig(hidden_size=4, num_hidden_layers=2, num_attention_heads=2,
                                       image_size=32, intermediate_size=16, patch_size=4)
        image_encoder = CLIPVisionModel(clip_config).eval()
        image_processor = CLIPImageProcessor(crop_size=32, size=32)
        tokens_per_image = (32 // 4) ** 2 + 1
        # The Wan 2.1 FLF2V layout: position embeddings for the first and the last frame's CLIP tokens.
        transformer = _wan_transformer(36, 16, image_dim=4, pos_embed_seq_len=2 * tokens_per_image)
        return diffusers.WanImageToVideoPipeline(
            transformer=transformer, vae=vae, scheduler=scheduler, text_encoder=_text_encoder(True, vocab_size),
            tokenizer=tokenizer, image_encoder=image_encoder, image_processor=image_processor,
        )
    if family == "ltx":
        torch.manual_seed(0)
        transformer = diffusers.LTXVideoTransformer3DModel(
            in_channels=8, out_channels=8, patch_size=1, patch_size_t=1, num_attention_heads=4, attention_head_dim=8,
            cross_attention_dim=32, num_layers=1, caption_channels=TEXT_DIM,
        ).eval()
        torch.manual_seed(0)
        vae = diffusers.AutoencoderKLLTXVideo(
            in_channels=3, out_channels=3, latent_channels=8, block_out_channels=(8, 8, 8, 8),
            decoder_block_out_channels=(8, 8, 8, 8), layers_per_block=(1, 1, 1, 1, 1),
            decoder_layers_per_block=(1, 1, 1, 1, 1), spatio_temporal_scaling=(True, True, True, False),
            decoder_spatio_temporal_scaling=(True, True, True, False),
            decoder_inject_noise=(False, False, False, False, False), upsample_residual=(False, False, False, False),
            upsample_factor=(1, 1, 1, 1), timestep_conditioning=False, patch_size=4, patch_size_t=1,
            encoder_causal=True, decoder_causal=False,
        ).eval()
        scheduler = diffusers.FlowMatchEulerDiscreteScheduler()
        return diffusers.LTXConditionPipeline(
            transformer=transformer, vae=vae, scheduler=scheduler, text_encoder=_text_encoder(False, vocab_size),
            tokenizer=tokenizer,
        )
    raise ValueError(f"unknown family {family!r}; one of {', '.join(TINY_FAMILIES)}")


def make_tiny_model(family: str, out: Path) -> Path:
    """Writes a tiny ``family`` model to ``out`` (created) with ``save_pretrained``; returns ``out``."""
    pipe = build_tiny_pipeline(family)
    out.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(str(out), safe_serialization=True)
    return out
