"""One decoder call (the 72% of a forecast) and one encoder call: library code vs the plain reference blocks.

Isolates layer-level changes to the tokenizer blocks in `modeling_deltatok.py` from the rest of the rollout (it was
used to measure, and reject, fused q/k/v/gate and gate/up projections: see RESULTS.md §5); interleaved, same inputs,
outputs compared.

    python benchmarks/bench_components.py --num-samples 20 --repeats 5
"""

from __future__ import annotations

import argparse
import sys

import torch

from _common import build_model, interleaved, machine_info, max_abs_diff, write_json
from reference_rollout import plain_decode, plain_encode


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=["tiny", "vitb"], default="vitb")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--num-samples", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    model = build_model(args.preset, args.device)
    if args.dtype == "bf16":
        model = model.to(torch.bfloat16)
    tokenizer = model.tokenizer
    dtype = tokenizer.z_embed.weight.dtype
    generator = torch.Generator().manual_seed(0)
    num_patches, hidden = (args.size // 16) ** 2, tokenizer.config.hidden_size
    previous = torch.randn(args.num_samples, num_patches, hidden, generator=generator).to(args.device, dtype)
    current = torch.randn(args.num_samples, num_patches, hidden, generator=generator).to(args.device, dtype)
    tokens = torch.randn(args.num_samples, hidden, generator=generator).to(args.device, dtype)
    rope = tokenizer.position_embeddings(args.size, args.size, device=args.device)

    results = {"command": "python " + " ".join(sys.argv), "machine": machine_info(args.device), "rows": []}
    for component, functions in {
        "decoder": {
            "reference": lambda: plain_decode(tokenizer, tokens, previous, rope),
            "ours": lambda: tokenizer.decode(tokens, previous, rope),
        },
        "encoder": {
            "reference": lambda: plain_encode(tokenizer, previous, current, rope),
            "ours": lambda: tokenizer.encode(previous, current, rope),
        },
    }.items():
        timing = interleaved(functions, args.repeats, args.warmup, args.device)
        outputs = timing.pop("outputs")
        row = {
            "component": component,
            "batch_tokens": f"{args.num_samples} x {num_patches + 1 if component == 'decoder' else 2 * num_patches + 1}",
            "dtype": args.dtype,
            "timing": timing,
            "ratio_wall": round(timing["ours"]["median_s"] / timing["reference"]["median_s"], 3),
            "ratio_cpu_s": round(timing["ours"]["median_cpu_s"] / timing["reference"]["median_cpu_s"], 3),
            "max_abs_diff": max_abs_diff(outputs["ours"], outputs["reference"]),
        }
        results["rows"].append(row)
        write_json(f"components_{args.dtype}", results)
        print({k: v for k, v in row.items() if k != "timing"}, timing)


if __name__ == "__main__":
    main()
