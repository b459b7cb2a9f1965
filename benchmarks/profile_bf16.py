"""Where a bf16 forecast spends its time: a per-op profile of `generate`, attributed to components and layer parts.

ViT-B/16-sized models (`DeltaWorldConfig()`, random weights), 256x256, 4 context frames, 3 steps, 20 samples, batch 1
by default: the forecast of `bench_inference.py`. `generate` runs under `torch.profiler` for `--rounds` rounds after a
warm-up; every aten op's *self* time is attributed to

* a component (backbone / encoder / decoder / predictor), from forward hooks on their blocks, and
* a part: `linear` (the GEMMs of the projections and MLPs, `aten::addmm`/`mm`, with the bias broadcast copy that
  `addmm` does inside counted apart as `linear bias copy`), `attention kernel` (SDPA), `rope` (everything inside the
  RoPE function), `layer norm` (block norms and qk-norms), `mlp activation` (SiLU/GELU and the SwiGLU product),
  `gate` (the sigmoid head gate and its product), `layer scale + residual`, `layout` (copies that make tensors
  contiguous), `other`.

Each profiled round also records the minor page faults and the share of kernel CPU time (`resource.getrusage`): the
first touch of every fresh activation buffer is paid inside whichever op writes it first, so it shows in the op
times above, not as an op of its own.

The hooks and the RoPE wrapper are profiling instruments installed by this script only (removed afterwards); the
library code is unchanged. Shares are reported per round and as the median over rounds; the per-part minimum over
rounds is given too, because on a shared machine every op can be slowed by other jobs at random.

In the same run it times a plain matmul of the decoder's MLP shape (`samples * (patches + 1)` rows, 768 x 2048) in
bf16 and fp32, so that the GEMMs' achieved rate can be expressed as a fraction of it; the forecast's FLOPs are counted
with `FlopCounterMode` (as `flops.py`).

    python benchmarks/profile_bf16.py                       # bf16 eager
    python benchmarks/profile_bf16.py --dtype float32       # the same profile in fp32
    python benchmarks/profile_bf16.py --compile             # after compile_for_inference(model)
    python benchmarks/profile_bf16.py --tune-allocator      # after tune_cpu_allocator()
"""

from __future__ import annotations

import argparse
import copy
import resource
import statistics
import sys
import time
from collections import defaultdict
from contextlib import contextmanager

import torch
from torch.profiler import ProfilerActivity, profile, record_function

from _common import build_model, interleaved, machine_info, make_clip, make_noise, write_json
from flops import count
from reference_rollout import ours

from transformers.models.dinov3_vit import modeling_dinov3_vit

from deltatok_hf.models.deltatok import modeling_deltatok

GEMM_OPS = {"aten::addmm", "aten::mm", "aten::bmm", "aten::baddbmm", "mkldnn::_linear_pointwise"}
ATTENTION_OPS = {"aten::_scaled_dot_product_flash_attention_for_cpu", "aten::_scaled_dot_product_attention_math"}
NORM_OPS = {"aten::native_layer_norm"}
ACTIVATION_OPS = {"aten::silu", "aten::gelu"}
LAYOUT_OPS = {"aten::copy_", "aten::clone", "aten::contiguous"}
ELEMENTWISE_OPS = {"aten::mul", "aten::mul_", "aten::add", "aten::add_"}


def components_of(model) -> dict[str, list[torch.nn.Module]]:
    tokenizer = model.tokenizer
    return {
        "backbone": list(tokenizer.backbone.model.layer),
        "encoder": list(tokenizer.encoder_blocks),
        "decoder": list(tokenizer.decoder_blocks),
        "predictor": list(model.predictor.blocks),
    }


def parts_of(block: torch.nn.Module) -> dict[str, list[torch.nn.Module]]:
    """Sub-modules of a block by part; matched by type so that backbone and tokenizer blocks both resolve."""
    parts = defaultdict(list)
    for name, module in block.named_modules():
        leaf, kind = name.rsplit(".", 1)[-1], type(module).__name__
        if isinstance(module, torch.nn.LayerNorm):
            parts["layer norm"].append(module)
        elif isinstance(module, torch.nn.Linear):
            parts["gate" if leaf == "attn_gate" else "linear"].append(module)
        elif "LayerScale" in kind:
            parts["layer scale + residual"].append(module)
        elif kind.endswith("MLP"):
            parts["mlp activation"].append(module)
        elif kind.endswith("Attention"):
            parts["attention (other)"].append(module)
    return parts


@contextmanager
def instrumented(model):
    """Label every op with `component/part` through record_function scopes opened by forward hooks."""
    handles, originals = [], {}

    def scope(label: str):
        def enter(module, args):
            module._profile_scope = record_function(label)
            module._profile_scope.__enter__()

        def leave(module, args, output):
            module._profile_scope.__exit__(None, None, None)

        return enter, leave

    for component, blocks in components_of(model).items():
        for block in blocks:
            modules = [(block, f"{component}/other")]
            for part, members in parts_of(block).items():
                modules += [(member, f"{component}/{part}") for member in members]
            for module, label in modules:
                enter, leave = scope(label)
                handles.append(module.register_forward_pre_hook(enter))
                handles.append(module.register_forward_hook(leave))
    # RoPE is a function, not a module: wrap the name the tokenizer attention calls.
    for module in (modeling_deltatok, modeling_dinov3_vit):
        for name in ("apply_rotary_pos_emb", "apply_patch_rope"):
            if hasattr(module, name):
                original = getattr(module, name)
                originals[module, name] = original

                def wrapped(*args, _original=original, **kwargs):
                    with record_function("rope"):
                        return _original(*args, **kwargs)

                setattr(module, name, wrapped)
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
        for (module, name), original in originals.items():
            setattr(module, name, original)


def attribute(events) -> dict[str, float]:
    """Self CPU milliseconds per `component/part`, from the innermost scope label above each aten op."""
    totals = defaultdict(float)
    for event in events:
        name = event.name
        if not (name.startswith("aten::") or name.startswith("mkldnn::")):
            continue
        labels, parent, parent_op = [], event.cpu_parent, None
        while parent is not None:
            if "/" in parent.name or parent.name == "rope":
                labels.append(parent.name)
            elif parent_op is None and parent.name.startswith("aten::"):
                parent_op = parent.name
            parent = parent.cpu_parent
        component = next((label.split("/")[0] for label in labels if "/" in label), "outside blocks")
        part = labels[0].split("/")[-1] if labels else "other"
        if "rope" in labels:
            part = "rope"
        # The op kind decides the part where the op says more than its scope.
        if name in GEMM_OPS:
            part = "linear" if part in ("linear", "gate") else "attention kernel"
        elif name in ATTENTION_OPS:
            part = "attention kernel"
        elif part == "rope":
            pass
        elif name in NORM_OPS:
            part = "layer norm"
        elif name in ACTIVATION_OPS:
            part = "mlp activation"
        elif name == "aten::sigmoid":
            part = "gate"
        elif name in LAYOUT_OPS:
            part = "linear bias copy" if parent_op == "aten::addmm" else "layout"
        elif name in ELEMENTWISE_OPS:
            # Products and sums directly in a block are the LayerScale residuals; in the attention, the head gate.
            part = {"attention (other)": "gate", "other": "layer scale + residual"}.get(part, part)
        totals[f"{component}/{part}"] += event.self_cpu_time_total / 1e3
    return dict(totals)


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=["tiny", "vitb"], default="vitb")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--num-context", type=int, default=4)
    parser.add_argument("--num-future", type=int, default=3)
    parser.add_argument("--num-samples", type=int, default=20)
    parser.add_argument("--dtype", choices=["bfloat16", "float32"], default="bfloat16")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--compile", action="store_true", help="profile after compile_for_inference(model)")
    parser.add_argument("--tune-allocator", action="store_true", help="call tune_cpu_allocator() first")
    parser.add_argument("--top", type=int, default=25, help="rows of the per-part table printed")
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    dtype = getattr(torch, args.dtype)
    if args.tune_allocator:
        from deltatok_hf.inference import tune_cpu_allocator

        args.tune_allocator = tune_cpu_allocator()
    output_name = args.output or f"profile_{'bf16' if dtype == torch.bfloat16 else 'fp32'}{'_compiled' if args.compile else ''}"

    model = build_model(args.preset)
    if dtype != torch.float32:
        model = copy.deepcopy(model).to(dtype)
    if args.compile:
        from deltatok_hf.inference import compile_for_inference

        compile_for_inference(model)
    frames, timestamps = make_clip(1, args.num_context + args.num_future, args.size)
    noise = make_noise(model, 1, args.num_samples, args.num_future)

    def forecast():
        return ours(model, frames, timestamps, args.num_context, noise)

    for _ in range(args.warmup):
        forecast()
    forecast_flops = count(forecast) if not args.compile else None

    rounds = []
    for _ in range(args.rounds):
        with instrumented(model), profile(activities=[ProfilerActivity.CPU]) as profiler:
            usage0, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
            forecast()
            wall, usage = time.perf_counter() - wall0, resource.getrusage(resource.RUSAGE_SELF)
        user, system = usage.ru_utime - usage0.ru_utime, usage.ru_stime - usage0.ru_stime
        rounds.append(
            {
                "wall_s": wall,
                "cpu_utilisation": (user + system) / wall,
                # Kernel time is mostly first-touch page faults of fresh activation buffers (see tune_cpu_allocator).
                "system_cpu_share": system / (user + system),
                "minor_page_faults": usage.ru_minflt - usage0.ru_minflt,
                "self_ms": attribute(profiler.events()),
            }
        )
    # Unprofiled forecasts, for the rate: the profiler adds per-op overhead.
    timing = interleaved({"forecast": forecast}, repeats=args.rounds, warmup=0)
    timing.pop("outputs")

    # Same-size plain matmuls (decoder MLP up-projection) in both dtypes, interleaved, for the rate fractions.
    rows = args.num_samples * ((args.size // 16) ** 2 + 1)
    hidden, intermediate = model.config.tokenizer_config.hidden_size, model.config.tokenizer_config.intermediate_size
    matmuls = {}
    for matmul_dtype in (torch.bfloat16, torch.float32):
        left = torch.randn(rows, hidden).to(matmul_dtype)
        right = torch.randn(hidden, intermediate).to(matmul_dtype)
        matmuls[str(matmul_dtype).removeprefix("torch.")] = lambda left=left, right=right: left @ right
    matmul_timing = interleaved(matmuls, repeats=max(5, args.rounds), warmup=1)
    matmul_timing.pop("outputs")
    matmul_flops = 2 * rows * hidden * intermediate
    matmul_rate = {name: matmul_flops / t["median_s"] / 1e9 for name, t in matmul_timing.items()}

    parts = sorted({key for r in rounds for key in r["self_ms"]})
    median_ms = {key: statistics.median(r["self_ms"].get(key, 0.0) for r in rounds) for key in parts}
    min_ms = {key: min(r["self_ms"].get(key, 0.0) for r in rounds) for key in parts}
    total_ms = sum(median_ms.values())
    by_part = defaultdict(float)
    for key, value in median_ms.items():
        by_part[key.split("/")[1]] += value
    summary = {
        "forecast_median_s": timing["forecast"]["median_s"],
        "forecast_cpu_utilisation": timing["forecast"]["cpu_utilisation"],
        "profiled_rounds_s": [round(r["wall_s"], 2) for r in rounds],
        "profiled_cpu_utilisation": [round(r["cpu_utilisation"], 2) for r in rounds],
        "system_cpu_share": [round(r["system_cpu_share"], 3) for r in rounds],
        "minor_page_faults": [r["minor_page_faults"] for r in rounds],
        "allocator_tuned": args.tune_allocator,
        "matmul_gflops_per_s": {name: round(rate, 1) for name, rate in matmul_rate.items()},
    }
    if forecast_flops is not None:
        achieved = forecast_flops / timing["forecast"]["median_s"] / 1e9
        summary["forecast_tflop"] = round(forecast_flops / 1e12, 4)
        summary["forecast_gflops_per_s"] = round(achieved, 1)
        summary["forecast_vs_matmul"] = round(achieved / matmul_rate[args.dtype], 3)
    results = {
        "command": "python " + " ".join(sys.argv),
        "machine": machine_info(),
        "setting": vars(args),
        "summary": summary,
        "share_by_part": {part: round(value / total_ms, 4) for part, value in sorted(by_part.items(), key=lambda kv: -kv[1])},
        "self_ms_median": {key: round(value, 1) for key, value in sorted(median_ms.items(), key=lambda kv: -kv[1])},
        "self_ms_min": {key: round(value, 1) for key, value in sorted(min_ms.items(), key=lambda kv: -kv[1])},
        "matmul_timing": matmul_timing,
        "rounds": rounds,
    }
    path = write_json(output_name, results)
    print(f"{args.dtype}{' compiled' if args.compile else ''}: {summary}")
    print(f"{'component/part':40s} {'median ms':>10s} {'min ms':>10s} {'share':>7s}")
    for key, value in list(results["self_ms_median"].items())[: args.top]:
        print(f"{key:40s} {value:10.1f} {min_ms[key]:10.1f} {value / total_ms:7.1%}")
    print("by part:", {part: f"{share:.1%}" for part, share in results["share_by_part"].items()}, f"-> {path}")


if __name__ == "__main__":
    main()
