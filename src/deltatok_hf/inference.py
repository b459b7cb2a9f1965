"""Inference helpers."""

from __future__ import annotations

import time

import torch
from torch import nn

from .models.deltatok import DeltaTokModel
from .models.deltaworld import DeltaWorldForForecasting


def _blocks(model: nn.Module) -> list[nn.Module]:
    if isinstance(model, DeltaWorldForForecasting):
        return _blocks(model.tokenizer) + list(model.predictor.blocks)
    if isinstance(model, DeltaTokModel):
        return list(model.backbone.model.layer) + list(model.encoder_blocks) + list(model.decoder_blocks)
    raise TypeError(f"compile_for_inference expects a DeltaTokModel or DeltaWorldForForecasting, got {type(model).__name__}.")


def compile_for_inference(model: nn.Module, dynamic: bool | None = False, mode: str | None = None) -> float:
    """
    Compile every transformer block of `model` (backbone, DeltaTok encoder and decoder, predictor) in place with
    `torch.compile`, which fuses the element-wise work around the matrix products (norms, RoPE, qk-norm, gates,
    activations). Parameter names and the state dict do not change, so the model still saves and loads as usual.

    Compilation happens lazily at the first call of each block shape (the first forecast is slow: tens of seconds on a
    CPU); benchmarks/RESULTS.md reports the compile time and the speed-up. Outputs stay within 1e-5 of eager fp32.

    Returns:
        the seconds spent here (the actual compilation happens at the first forecast).
    """
    started = time.perf_counter()
    # Every block class runs through the same `GradientCheckpointingLayer.__call__` code object, and dynamo counts
    # recompilations per code object: backbone, encoder, decoder and predictor shapes (and dtypes) exceed the default
    # limit of 8, after which blocks would silently run eagerly.
    import torch._dynamo.config as dynamo_config

    dynamo_config.recompile_limit = max(dynamo_config.recompile_limit, 64)
    for block in _blocks(model):
        block.compile(dynamic=dynamic, mode=mode)
    return time.perf_counter() - started


__all__ = ["compile_for_inference"]
