"""FLOPs and parameters per component of a forecast (the paper's Table B analogue), reference path vs ours.

ViT-B/16 sizes, 256x256, 4 context frames, 3-step rollout, 20 samples, batch 1 by default. FLOPs are counted with
`torch.utils.flop_counter.FlopCounterMode` on ONE unit call of every component (one frame through the backbone, one
pair through the encoder, one sample-step through the decoder, one sample through the predictor at each context
length) and multiplied by how many such units each path runs. Every op involved (matmul, bmm, SDPA) is linear in the
batch dimension, which the script checks by also counting a 2-unit decoder call. This keeps the count exact while
running only a few seconds of model code.

Call counts per path (B clips, T = context + future frames, S samples, F future steps, C context frames):

| component | reference (official rollout)        | ours (`generate`)                            |
| backbone  | B·T frames + B black frames          | B·C frames (black frame cached)              |
| encoder   | B·T pairs (targets included)         | B·C pairs                                    |
| predictor | per step: B·S queries + K/V of the whole (B·S, C+step) context | K/V of B·C tokens once + B·S·(F-1) new tokens, B·S queries per step |
| decoder   | B·S·F sample-steps                   | B·S·F sample-steps                           |

Achieved FLOP/s: a decoder call (ours, `--timing-samples` samples) and a plain fp32 matmul of comparable size, timed
in the same run.

    python benchmarks/flops.py
"""

from __future__ import annotations

import argparse
import sys

import torch
from torch.utils.flop_counter import FlopCounterMode

from _common import build_model, interleaved, machine_info, write_json


def count(function) -> int:
    with FlopCounterMode(display=False) as counter:
        function()
    return counter.get_total_flops()


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--num-context", type=int, default=4)
    parser.add_argument("--num-future", type=int, default=3)
    parser.add_argument("--num-samples", type=int, default=20)
    parser.add_argument("--timing-samples", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    model = build_model("vitb", args.device)
    tokenizer, predictor = model.tokenizer, model.predictor
    size, device = args.size, args.device
    num_patches, hidden, predictor_hidden = (size // 16) ** 2, tokenizer.config.hidden_size, model.config.hidden_size
    frame = torch.randint(0, 256, (1, 1, 3, size, size), dtype=torch.uint8, device=device)
    rope = tokenizer.position_embeddings(size, size, device=device)
    features = torch.randn(2, num_patches, hidden, device=device)
    token = torch.randn(2, hidden, device=device)

    def predictor_query_flops(context_length: int) -> int:
        context_states = predictor.project_context(
            torch.randn(1, context_length, hidden, device=device), torch.arange(context_length, device=device)[None] * 0.25
        )
        return count(lambda: predictor(torch.randn(1, 1, predictor_hidden, device=device), torch.ones(1, 1) * 9.0, context_states=context_states))

    def predictor_kv_flops(num_tokens: int) -> int:
        tokens = torch.randn(1, num_tokens, hidden, device=device)
        return count(lambda: predictor.project_context(tokens, torch.arange(num_tokens, device=device)[None] * 0.25))

    unit = {
        "backbone_frame": count(lambda: tokenizer.extract_features(frame)),
        "encoder_pair": count(lambda: tokenizer.encode(features[:1], features[1:], rope)),
        "decoder_sample_step": count(lambda: tokenizer.decode(token[:1], features[:1], rope)),
        "decoder_two_sample_steps": count(lambda: tokenizer.decode(token, features, rope)),
        "predictor_kv_token": predictor_kv_flops(1),
    }
    if unit["decoder_two_sample_steps"] != 2 * unit["decoder_sample_step"]:
        raise RuntimeError(f"FLOPs are not linear in the batch: {unit}")

    B, C, F, S = args.batch_size, args.num_context, args.num_future, args.num_samples
    T = C + F
    query = {length: predictor_query_flops(length) for length in range(C, C + F)}
    kv_token = unit["predictor_kv_token"]
    paths = {
        "reference": {
            "backbone": (B * T + B) * unit["backbone_frame"],
            "encoder": B * T * unit["encoder_pair"],
            # every step: queries + keys/values of the whole per-sample context
            "predictor": sum(B * S * (query[C + step] + (C + step) * kv_token) for step in range(F)),
            "decoder": B * S * F * unit["decoder_sample_step"],
        },
        "ours": {
            "backbone": B * C * unit["backbone_frame"],
            "encoder": B * C * unit["encoder_pair"],
            "predictor": B * C * kv_token + B * S * (F - 1) * kv_token + sum(B * S * query[C + step] for step in range(F)),
            "decoder": B * S * F * unit["decoder_sample_step"],
        },
    }
    parameters = {
        "backbone": sum(p.numel() for p in tokenizer.backbone.parameters()),
        "encoder": sum(p.numel() for p in tokenizer.encoder_blocks.parameters()),
        "decoder": sum(p.numel() for p in tokenizer.decoder_blocks.parameters()),
        "predictor": sum(p.numel() for p in predictor.parameters()),
    }
    table = {}
    for path, flops in paths.items():
        total = sum(flops.values())
        table[path] = {
            "total_tflop": round(total / 1e12, 4),
            "components": {
                name: {"gflop": round(value / 1e9, 2), "share": round(value / total, 4)} for name, value in flops.items()
            },
        }
    table["ours_vs_reference_flops"] = round(table["ours"]["total_tflop"] / table["reference"]["total_tflop"], 4)

    # Achieved FLOP/s: one decoder call vs a plain matmul with the decoder's MLP shape.
    samples = args.timing_samples
    decode_previous = torch.randn(samples, num_patches, hidden, device=device)
    decode_tokens = torch.randn(samples, hidden, device=device)
    left = torch.randn(samples * (num_patches + 1), hidden, device=device)
    right = torch.randn(hidden, 4 * hidden, device=device)
    timing = interleaved(
        {"matmul": lambda: left @ right, "decoder_call": lambda: tokenizer.decode(decode_tokens, decode_previous, rope)},
        args.repeats,
        warmup=1,
        device=device,
    )
    timing.pop("outputs")
    matmul_flops = 2 * left.shape[0] * hidden * 4 * hidden
    decoder_flops = samples * unit["decoder_sample_step"]
    achieved = {
        "matmul_gflops_per_s": round(matmul_flops / timing["matmul"]["median_s"] / 1e9, 1),
        "decoder_gflops_per_s": round(decoder_flops / timing["decoder_call"]["median_s"] / 1e9, 1),
        "timing": timing,
    }
    achieved["decoder_vs_matmul"] = round(achieved["decoder_gflops_per_s"] / achieved["matmul_gflops_per_s"], 3)

    results = {
        "command": "python " + " ".join(sys.argv),
        "machine": machine_info(device),
        "setting": vars(args),
        "unit_flops": unit,
        "parameters_millions": {k: round(v / 1e6, 2) for k, v in parameters.items()},
        "flops": table,
        "achieved": achieved,
    }
    path = write_json("flops", results)
    for name in ("reference", "ours"):
        shares = ", ".join(f"{k} {v['gflop']} GFLOP ({100 * v['share']:.2f}%)" for k, v in table[name]["components"].items())
        print(f"{name}: {table[name]['total_tflop']} TFLOP: {shares}")
    print(f"ours / reference FLOPs: {table['ours_vs_reference_flops']}")
    print(f"parameters (M): {results['parameters_millions']}")
    print({k: v for k, v in achieved.items() if k != "timing"}, f"-> {path}")


if __name__ == "__main__":
    main()
