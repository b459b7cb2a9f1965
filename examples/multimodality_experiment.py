#!/usr/bin/env python
"""Best-of-Many vs deterministic DeltaWorld on futures with several true modes.

    python examples/multimodality_experiment.py --output_json outputs/multimodality.json

`SyntheticMultimodalMotion` clips have a context in which a shape moves, then one of `num_modes` continuations. Both
predictors are trained the same way (same tokenizer, cached delta tokens, seed, steps, optimizer) on the same clips;
only `use_best_of_many` differs. On held-out clips we draw 20 futures of the first future frame and report

- best-of-20 error: the smallest mean-squared error of a sample to the clip's true future, in delta-token space and
  in feature space (after the DeltaTok decoder);
- mode coverage: the fraction of the true modes that are the nearest mode (in delta-token space) of at least one
  sample, averaged over clips.

The deterministic model predicts one future, so its 20 "samples" are the same prediction.
"""

import argparse
import json
import time

import torch
from accelerate.utils import set_seed

from deltatok_hf import DeltaTokModel, DeltaWorldForForecasting
from deltatok_hf.training import resolve_config, write_json
from deltatok_hf.training.experiments import encode_dataset, fit


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokenizer", type=str, default=None, help="DeltaTok (or DeltaWorld) weights whose tokenizer to use; default: random-init tiny.")
    parser.add_argument("--world_config", type=str, default="tiny")
    parser.add_argument("--num_train_videos", type=int, default=512)
    parser.add_argument("--num_eval_videos", type=int, default=64)
    parser.add_argument("--num_frames", type=int, default=7)
    parser.add_argument("--num_context_frames", type=int, default=4)
    parser.add_argument("--num_modes", type=int, default=4)
    parser.add_argument("--frame_size", type=int, default=64)
    parser.add_argument("--max_train_steps", type=int, default=400)
    parser.add_argument("--train_batch_size", type=int, default=32)
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--weight_decay", type=float, default=4e-1)
    parser.add_argument("--warmup_steps", type=int, default=20)
    parser.add_argument("--num_samples_train", type=int, default=32, help="Best-of-Many candidates K.")
    parser.add_argument("--num_samples", type=int, default=20, help="Futures drawn at evaluation.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output_json", type=str, default=None)
    return parser.parse_args(argv)


@torch.no_grad()
def evaluate(model, cached: dict, args) -> dict:
    model.eval()
    num_context = args.num_context_frames
    num_samples = args.num_samples if model.config.use_best_of_many else 1
    output = model.generate(
        delta_tokens=cached["delta_tokens"][:, :num_context],
        timestamps=cached["timestamps"][:, :num_context],
        future_timestamps=cached["timestamps"][:, num_context : num_context + 1],
        last_features=cached["last_context_features"],
        num_samples=num_samples,
        generator=torch.Generator().manual_seed(args.seed + 1),
    )
    # (batch, samples, D) and (batch, samples, N, D), repeated to 20 for the deterministic model
    samples = output.future_delta_tokens[:, :, 0].expand(-1, args.num_samples, -1)
    sample_features = output.future_features[:, :, 0].expand(-1, args.num_samples, -1, -1)
    batch = torch.arange(samples.shape[0])
    true_tokens = cached["mode_tokens"][batch, cached["modes"]]  # (batch, D)
    true_features = cached["mode_features"][batch, cached["modes"]]  # (batch, N, D)
    token_error = ((samples - true_tokens[:, None]) ** 2).mean(-1)  # (batch, samples)
    feature_error = ((sample_features - true_features[:, None]) ** 2).mean((-1, -2))
    # nearest true mode of every sample: (batch, samples)
    distance_to_modes = torch.cdist(samples, cached["mode_tokens"])
    nearest = distance_to_modes.argmin(-1)
    covered = torch.zeros(samples.shape[0], args.num_modes, dtype=torch.bool)
    covered.scatter_(1, nearest, True)
    return {
        "best_of_20_token_mse": token_error.min(-1).values.mean().item(),
        "mean_sample_token_mse": token_error.mean().item(),
        "best_of_20_feature_mse": feature_error.min(-1).values.mean().item(),
        "mode_coverage": covered.float().mean().item(),
    }


def main(argv=None):
    args = parse_args(argv)
    from deltatok_hf.data import SyntheticMultimodalMotion

    start = time.perf_counter()
    set_seed(args.seed)
    if args.tokenizer is not None:
        from transformers import AutoConfig

        if AutoConfig.from_pretrained(args.tokenizer).model_type == "deltaworld":  # e.g. the demo model
            tokenizer = DeltaWorldForForecasting.from_pretrained(args.tokenizer).tokenizer
        else:
            tokenizer = DeltaTokModel.from_pretrained(args.tokenizer)
    else:
        tokenizer = DeltaTokModel(resolve_config("deltatok", "tiny"))
    tokenizer.eval()
    dataset_kwargs = dict(
        num_frames=args.num_frames, num_context_frames=args.num_context_frames, size=args.frame_size, num_modes=args.num_modes
    )
    train_cache = encode_dataset(tokenizer, SyntheticMultimodalMotion(args.num_train_videos, seed=args.seed, **dataset_kwargs))
    eval_cache = encode_dataset(tokenizer, SyntheticMultimodalMotion(args.num_eval_videos, seed=args.seed + 1000, **dataset_kwargs))

    results = {}
    for name, use_best_of_many in (("best_of_many", True), ("deterministic", False)):
        config = resolve_config("deltaworld", args.world_config)
        config.use_best_of_many = use_best_of_many
        config.num_samples_train = args.num_samples_train
        set_seed(args.seed)
        model = DeltaWorldForForecasting.from_tokenizer(tokenizer, config)
        tokens, timestamps = train_cache["delta_tokens"], train_cache["timestamps"]

        def predictor_loss(index, model=model):
            return model(delta_tokens=tokens[index], timestamps=timestamps[index]).loss

        set_seed(args.seed)  # training draws its noise from a state that does not depend on building the model
        losses = fit(
            model, predictor_loss, tokens.shape[0], args.max_train_steps, batch_size=args.train_batch_size,
            learning_rate=args.learning_rate, weight_decay=args.weight_decay, warmup_steps=args.warmup_steps,
            seed=args.seed, description="BoM" if use_best_of_many else "deterministic",
        )  # fmt: skip
        results[name] = {"final_train_loss": sum(losses[-20:]) / len(losses[-20:]), **evaluate(model, eval_cache, args)}
    results["ratio_best_of_20_token_mse"] = (
        results["best_of_many"]["best_of_20_token_mse"] / results["deterministic"]["best_of_20_token_mse"]
    )
    results["ratio_best_of_20_feature_mse"] = (
        results["best_of_many"]["best_of_20_feature_mse"] / results["deterministic"]["best_of_20_feature_mse"]
    )
    results["settings"] = vars(args)
    results["seconds"] = time.perf_counter() - start
    print(json.dumps({k: v for k, v in results.items() if k != "settings"}, indent=2))
    if args.output_json:
        write_json(args.output_json, results)


if __name__ == "__main__":
    main()
