"""Peak training-step memory of the ablation rungs, each measured in a fresh process.

One training step (forward + backward) from precomputed inputs: backbone features for DINO-world, delta / frame tokens
for DeltaWorld (the frozen backbone and tokenizer would cost every rung the same, or be cached, so they are left out).
The peak is the growth of the process's resident set during that step (after a small warm-up step): the peak
resident set (`VmHWM`, reset just before the step) minus the resident set before it. Random weights and random inputs: this measures memory, not quality.

    python examples/ablation/measure_bom_memory.py          # DINO-world step 1 (K = 16) vs step 0, mid size
    python examples/ablation/measure_bom_memory.py --tiny   # the same at the tiny reference sizes
    python examples/ablation/measure_bom_memory.py --all-rungs   # plus the two DeltaWorld rungs

The measurement (`build_memory_rung`, `measure_training_step`, `peak_training_memory`) lives in
`deltatok_hf.training.ablation`; `run_ladder.py` uses it for its table.
"""

from __future__ import annotations

import argparse

from deltatok_hf.training.ablation import peak_training_memory


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Peak training memory: DINO-world step 1 (Best-of-Many) vs step 0.")
    parser.add_argument("--tiny", action="store_true", help="the tiny reference sizes instead of the mid size")
    parser.add_argument("--num-candidates", type=int, default=16, help="Best-of-Many K (default 16)")
    parser.add_argument("--chunks", default="none,4,1", help="candidate_chunk_size values for step 1 (default none,4,1)")
    parser.add_argument("--repeats", type=int, default=2, help="fresh processes per row; the smallest peak is kept")
    parser.add_argument("--all-rungs", action="store_true", help="also the two DeltaWorld rungs (their own K, 256)")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
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
