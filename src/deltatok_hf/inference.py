"""Inference helpers."""

from __future__ import annotations

import ctypes
import ctypes.util
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


# glibc `mallopt` parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4


def tune_cpu_allocator(trim_threshold_bytes: int = 1 << 30) -> bool:
    """
    Make this process reuse freed memory for new tensors instead of returning it to the system (glibc only).

    By default glibc serves large blocks (the activations of a ViT-B block are 4-40 MB) with fresh `mmap`s and gives
    them back on free, so every new activation buffer is page-faulted and zeroed by the kernel again: on the 2-core
    benchmark machine that was about 34 000 page faults and 10 % of the CPU time of a bf16 decoder block
    (benchmarks/RESULTS.md, bf16 section). This turns `mmap` for allocations off and keeps up to
    `trim_threshold_bytes` of freed memory at the top of the heap. The setting is process-wide and lasts until exit;
    the process then keeps its peak memory. Results do not change (allocation only). The same effect without code:
    `GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=1073741824` in the environment.

    Returns:
        `True` when applied; `False` when the C library is not glibc (nothing changed).
    """
    if isinstance(trim_threshold_bytes, bool) or not isinstance(trim_threshold_bytes, int) or not 0 <= trim_threshold_bytes < 2**31:
        raise ValueError(f"trim_threshold_bytes must be an integer in [0, 2**31), got {trim_threshold_bytes!r}.")
    library = ctypes.util.find_library("c")
    if library is None:
        return False
    libc = ctypes.CDLL(library)
    if not hasattr(libc, "mallopt") or not hasattr(libc, "gnu_get_libc_version"):
        return False
    return bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, trim_threshold_bytes))


__all__ = ["compile_for_inference", "tune_cpu_allocator"]
