"""Inference FLOPs of one forecast at the paper's sizes, for every rung of the ladder.

ViT-B/16 backbone, ViT-B-sized tokenizer and predictors (the config defaults, random weights), 256 x 256 frames,
4 context frames, 3 predicted frames, 20 samples (1 for the learned-query rung). FLOPs are counted by
`torch.utils.flop_counter.FlopCounterMode` over `generate` calls from frames (backbone, tokenizer, predictor and
decoder included). Every operation's cost is either per clip (backbone, encoder) or per sample (queries, decoder), so
the count is affine in the number of samples: it is measured at 1 and 2 samples and the line is evaluated at 20 (exact,
and 20x cheaper to run on a CPU than 20 samples). Random weights: a cost measurement only.

    python examples/ablation/vitb_inference_flops.py [--rungs dinoworld,dinoworld_bom,frame_tokens,delta_tokens]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from deltatok_hf import DeltaTokConfig, DeltaWorldConfig, DeltaWorldForForecasting, DinoWorldConfig, DinoWorldForForecasting


def build(rung: str):
    if rung.startswith("dinoworld"):
        return DinoWorldForForecasting(DinoWorldConfig(use_best_of_many=rung == "dinoworld_bom"))
    tokenizer = DeltaTokConfig(use_delta=rung == "delta_tokens")
    return DeltaWorldForForecasting(DeltaWorldConfig(tokenizer_config=tokenizer, use_best_of_many=True))


def main() -> None:
    parser = argparse.ArgumentParser(description="ViT-B-size inference FLOPs of the ablation rungs (random weights).")
    parser.add_argument("--rungs", default="dinoworld,dinoworld_bom,frame_tokens,delta_tokens")
    parser.add_argument("--num-samples", type=int, default=20)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", default="examples/ablation/results/vitb_inference_flops.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    frames = torch.randint(0, 256, (1, 4, 3, args.size, args.size)).float()
    timestamps = torch.tensor([[0.0, 0.2, 0.4, 0.6]])
    future = torch.tensor([[0.8, 1.0, 1.2]])
    results = {}
    for rung in args.rungs.split(","):
        model = build(rung).eval()
        if hasattr(model, "tokenizer"):
            # Cached after the first call; computed here so that neither counted call pays for it.
            model.tokenizer.black_frame_features(args.size, args.size)
        counts = []
        for num_samples in ((1,) if not model.config.use_best_of_many else (1, 2)):
            counter = FlopCounterMode(display=False)
            with counter, torch.no_grad():
                model.generate(frames, timestamps, future, num_samples=num_samples)
            counts.append(counter.get_total_flops())
        if len(counts) == 1:
            results[rung] = {"num_samples": 1, "tflops": counts[0] / 1e12}
        else:
            per_sample = counts[1] - counts[0]
            results[rung] = {
                "num_samples": args.num_samples,
                "tflops": (counts[0] + (args.num_samples - 1) * per_sample) / 1e12,
                "per_clip_tflops": (counts[0] - per_sample) / 1e12,
                "per_sample_tflops": per_sample / 1e12,
            }
        print(json.dumps({rung: results[rung]}), flush=True)
        del model
    print(json.dumps(results, indent=2))
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2))
    print(f"Wrote {output}")


if __name__ == "__main__":
    main()
