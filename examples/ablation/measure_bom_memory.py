"""Peak training-step memory of the ablation rungs, each measured in a fresh process.

One training step (forward + backward) from precomputed inputs: backbone features for DINO-world, delta / frame tokens
for DeltaWorld (the frozen backbone and tokenizer would cost every rung the same, or be cached, so they are left out).
The peak is the growth of the process's resident set during that step (after a small warm-up step): the peak
resident set (`VmHWM`, reset just before the step) minus the resident set before it. Random weights and random inputs: this measures memory, not quality.

    python examples/ablation/measure_bom_memory.py          # DINO-world step 1 (K = 16) vs step 0, mid size
    python examples/ablation/measure_bom_memory.py --tiny   # the same at the tiny reference sizes
    python examples/ablation/measure_bom_memory.py --all-rungs   # plus the two DeltaWorld rungs

`run_ladder.py` uses `peak_training_memory` for its table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

RUNGS = ("dinoworld", "dinoworld_bom", "frame_tokens", "delta_tokens")


def _status_bytes(field: str) -> int:
    """A `kB` field of /proc/self/status (`VmRSS`: resident now, `VmHWM`: its peak), in bytes."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field} field (Linux only).")


def _reset_peak() -> None:
    # Writing 5 to clear_refs resets VmHWM to the current resident set (Linux >= 4.0). `ru_maxrss` is no substitute:
    # it keeps the parent's peak across fork and exec.
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")


def build_rung(rung: str, sizes: str, num_candidates: int | None = None, chunk: int | None | str = "default"):
    """A random-weight model of `rung` at `sizes` (`"tiny"` or `"mid"`), and the side of its patch grid."""
    from transformers import DINOv3ViTConfig

    from deltatok_hf import DeltaTokConfig, DeltaWorldConfig, DeltaWorldForForecasting, DinoWorldConfig, DinoWorldForForecasting

    if rung not in RUNGS:
        raise ValueError(f"rung must be one of {RUNGS}, got {rung!r}.")
    if sizes not in ("tiny", "mid"):
        raise ValueError(f"sizes must be 'tiny' or 'mid', got {sizes!r}.")
    dino_kwargs = {"use_best_of_many": rung == "dinoworld_bom"}
    if num_candidates is not None:
        dino_kwargs["num_samples_train"] = num_candidates
    if chunk != "default":
        dino_kwargs["candidate_chunk_size"] = chunk
    world_kwargs = {} if num_candidates is None else {"num_samples_train": num_candidates}
    use_delta = rung == "delta_tokens"
    if sizes == "tiny":
        if rung.startswith("dinoworld"):
            return DinoWorldForForecasting(DinoWorldConfig.tiny(**dino_kwargs)), 4
        config = DeltaWorldConfig.tiny(tokenizer_kwargs={"use_delta": use_delta}, **world_kwargs)
        return DeltaWorldForForecasting(config), 4
    # Mid size: a ViT-B-wide feature space (the backbone is not run) and a 6-block, 384-wide predictor with the ViT-B
    # head split, on a 16 x 16 grid (256 x 256 frames).
    backbone = DINOv3ViTConfig(
        hidden_size=768, intermediate_size=3072, num_hidden_layers=1, num_attention_heads=12, num_register_tokens=4,
        patch_size=16,
    )
    predictor = {"hidden_size": 384, "num_hidden_layers": 6, "num_attention_heads": 6}
    if rung.startswith("dinoworld"):
        return DinoWorldForForecasting(DinoWorldConfig(backbone_config=backbone, **predictor, **dino_kwargs)), 16
    tokenizer = DeltaTokConfig(backbone_config=backbone, num_encoder_layers=1, num_decoder_layers=1, use_delta=use_delta)
    return DeltaWorldForForecasting(DeltaWorldConfig(tokenizer_config=tokenizer, **predictor, **world_kwargs)), 16


def _worker(spec: dict) -> dict:
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(spec.get("threads", 1))
    model, grid = build_rung(spec["rung"], spec["sizes"], spec.get("num_candidates"), spec.get("chunk", "default"))
    model.train()
    num_frames = spec.get("num_frames", 5)
    timestamps = torch.arange(num_frames, dtype=torch.float32)[None] * 0.1
    if spec["rung"].startswith("dinoworld"):
        inputs = {"features": torch.randn(spec.get("batch_size", 1), num_frames, grid * grid, model.config.feature_size)}
    else:
        inputs = {"delta_tokens": torch.randn(spec.get("batch_size", 1), num_frames, model.config.delta_token_size)}
    # A warm-up step on two frames of one clip first: one-time allocations (kernel setup, allocator pools) would
    # otherwise count as the step's; its own peak is below the measured step's.
    warm_up = {name: value[:1, :2] for name, value in inputs.items()}
    model(timestamps=timestamps[:, :2], **warm_up).loss.backward()
    model.zero_grad(set_to_none=True)
    _reset_peak()
    before = _status_bytes("VmRSS")
    start = time.perf_counter()
    model(timestamps=timestamps.expand(next(iter(inputs.values())).shape[0], -1), **inputs).loss.backward()
    seconds = time.perf_counter() - start
    return {"peak_growth_bytes": _status_bytes("VmHWM") - before, "step_seconds": seconds}


def peak_training_memory(spec: dict, repeats: int = 1) -> dict:
    """Run `_worker(spec)` in `repeats` fresh processes; the run with the smallest peak (least noise) is returned."""
    runs = []
    for _ in range(repeats):
        command = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"The memory worker for {spec} failed ({result.returncode}):\n{result.stderr[-2000:]}")
        runs.append(json.loads(result.stdout.strip().splitlines()[-1]))
    return min(runs, key=lambda run: run["peak_growth_bytes"])


def main() -> None:
    parser = argparse.ArgumentParser(description="Peak training memory: DINO-world step 1 (Best-of-Many) vs step 0.")
    parser.add_argument("--tiny", action="store_true", help="the tiny reference sizes instead of the mid size")
    parser.add_argument("--num-candidates", type=int, default=16, help="Best-of-Many K (default 16)")
    parser.add_argument("--chunks", default="none,4,1", help="candidate_chunk_size values for step 1 (default none,4,1)")
    parser.add_argument("--repeats", type=int, default=2, help="fresh processes per row; the smallest peak is kept")
    parser.add_argument("--all-rungs", action="store_true", help="also the two DeltaWorld rungs (their own K, 256)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_worker(json.loads(args.worker))))
        return

    sizes = "tiny" if args.tiny else "mid"
    rows = [("step 0 (learned query)", {"rung": "dinoworld", "sizes": sizes})]
    for chunk in args.chunks.split(","):
        value = None if chunk.strip().lower() == "none" else int(chunk)
        spec = {"rung": "dinoworld_bom", "sizes": sizes, "num_candidates": args.num_candidates, "chunk": value}
        rows.append((f"step 1 (BoM K={args.num_candidates}, candidate_chunk_size={value})", spec))
    if args.all_rungs:
        rows.append(("frame tokens + BoM (K=256, from tokens)", {"rung": "frame_tokens", "sizes": sizes}))
        rows.append(("delta tokens + BoM (K=256, from tokens)", {"rung": "delta_tokens", "sizes": sizes}))
    results = [(name, peak_training_memory(spec, args.repeats)) for name, spec in rows]
    reference = results[0][1]["peak_growth_bytes"]
    print(f"sizes: {sizes}; one training step from features (DINO-world) or tokens (DeltaWorld), batch 1, 5 frames, a fresh process per row")
    print("| rung | peak growth (MiB) | vs step 0 | step time (s) |")
    print("| --- | ---: | ---: | ---: |")
    for name, run in results:
        ratio = run["peak_growth_bytes"] / reference
        print(f"| {name} | {run['peak_growth_bytes'] / 2**20:.1f} | {ratio:.2f}x | {run['step_seconds']:.2f} |")


if __name__ == "__main__":
    main()
