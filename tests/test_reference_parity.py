"""Parity with the official implementation: replay every golden section of ../shared/reference/.

The weights are converted from the official key names with `deltatok_hf.convert`; every random draw is regenerated
from the documented RNG order (seeds in the JSON), never read from the file.
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from deltatok_hf.convert import convert_official_checkpoint

ATOL, RTOL = 1e-5, 1e-4


def assert_close(name: str, actual: torch.Tensor, expected: torch.Tensor) -> None:
    assert tuple(actual.shape) == tuple(expected.shape), f"{name}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    if expected.dtype in (torch.int64, torch.int32, torch.bool):
        assert torch.equal(actual.to(expected.dtype), expected), f"{name}: {actual} != {expected}"
        return
    torch.testing.assert_close(actual.float(), expected.float(), atol=ATOL, rtol=RTOL, msg=lambda m: f"{name}: {m}")


def best_sample_index(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Official 'best' selection: argmin over samples of the smooth-L1 (beta 0.1) at the last step."""
    last = predictions[:, :, -1]  # (batch, samples, patches, hidden)
    losses = F.smooth_l1_loss(last, targets[:, None, -1].expand_as(last), beta=0.1, reduction="none")
    return losses.flatten(2).mean(-1).argmin(1)


def build_world(reference_dir, variant: str | None):
    main_weights = load_file(str(reference_dir / "reference_tiny_weights.safetensors"))
    weights = dict(main_weights)
    use_delta = None
    if variant is not None:
        info = json.loads((reference_dir / "ablation" / f"reference_{variant}.json").read_text())
        own = reference_dir / "ablation" / f"reference_{variant}_weights.safetensors"
        if own.is_file():
            weights.update(load_file(str(own)))
        if info["constructor_overrides"].get("tokenizer", {}).get("use_delta") is False:
            use_delta = False
    model, report = convert_official_checkpoint(weights=weights, preset="tiny", use_delta=use_delta)
    assert not report.unmatched and not report.shape_mismatches and not report.missing, report.summary()
    return model


def replay(model, reference: dict[str, torch.Tensor], seeds: dict, num_samples: int) -> dict[str, torch.Tensor]:
    """Run every section the reference holds; returns our tensors under the reference names."""
    ours: dict[str, torch.Tensor] = {}
    tokenizer = model.tokenizer
    if "tok/frames" in reference:
        model.eval()
        frames = reference["tok/frames"]
        with torch.no_grad():
            ours["tok/pixel_values"] = tokenizer.preprocess(frames.flatten(0, 1))
            features = tokenizer.extract_features(frames)
            rope = tokenizer.position_embeddings(*frames.shape[-2:])
            ours["tok/y"] = features
            ours["tok/rope_cos"], ours["tok/rope_sin"] = rope
            if tokenizer.config.use_delta:
                token = tokenizer.encode(features[:, 0], features[:, 1], rope)
                ours["tok/z"] = token[:, None]
                ours["tok/y_hat"] = tokenizer.decode(token, features[:, 0], rope)
            else:
                # Frame tokens: every frame encoded and decoded on its own.
                tokens = tokenizer.encode(None, features, rope)
                ours["tok/z"] = tokens
                ours["tok/y_hat"] = tokenizer.decode(tokens, None, rope, num_patches=features.shape[-2])
            ours["tok/x_black"] = tokenizer.black_frame_features(*frames.shape[-2:]).expand(frames.shape[0], -1, -1)
            ours["tok/fwd_h1_preds"] = tokenizer.reconstruct(frames, num_steps=1).reconstructions
            ours["tok/fwd_h2_preds"] = tokenizer.reconstruct(frames, num_steps=2).reconstructions
        tokenizer.train()
        torch.manual_seed(seeds["tok_train"])
        output = tokenizer(frames)
        ours["tok_train/y_hat"], ours["tok_train/y_tgt"] = output.reconstruction, output.target_features
        tokenizer.eval()

    if "roll/frames" in reference:
        model.eval()
        frames, timestamps = reference["roll/frames"], reference["roll/timestamps"]
        generator = torch.Generator().manual_seed(seeds["rollout"])
        forecast = model.generate(
            frames[:, :4], timestamps[:, :4], timestamps[:, 4:], num_samples=num_samples, generator=generator
        )
        with torch.no_grad():
            targets = tokenizer.extract_features(frames[:, 4:])
            all_tokens, all_features, _ = model.encode_context(frames)
        batch, samples, horizon = forecast.future_delta_tokens.shape[:3]
        ours["roll/preds"] = forecast.future_features
        ours["roll/ctx"] = forecast.context_features
        ours["roll/tgts"] = targets
        ours["roll/y"] = all_features
        ours["roll/z"] = all_tokens
        ours["roll/z_hat"] = forecast.future_delta_tokens.permute(2, 0, 1, 3).reshape(horizon, batch * samples, 1, -1)
        if forecast.noise is not None:
            ours["roll/noise"] = forecast.noise.permute(2, 0, 1, 3)[:, :, :, None]
        ours["roll/mean_rollout"] = forecast.future_features.mean(1)
        ours["roll/best_idx"] = best_sample_index(forecast.future_features, targets)

    if "train/frames" in reference:
        model.train()
        torch.manual_seed(seeds["train"])
        output = model(reference["train/frames"], reference["train/timestamps"], output_candidates=True)
        output.loss.backward()
        ours["train/z_hat"], ours["train/z_tgt"], ours["train/loss"] = (
            output.predicted_delta_tokens,
            output.target_delta_tokens,
            output.loss,
        )
        if output.candidate_queries is not None:
            ours["train/q_samples"] = output.candidate_queries
            ours["train/bom_preds"] = output.candidate_predictions
            ours["train/bom_losses"] = output.candidate_losses
            ours["train/bom_best_idx"] = output.best_candidate_indices
            ours["train/q_selected"] = output.selected_queries
        for name, parameter in model.named_parameters():
            if parameter.grad is not None:
                official = "q_embed.weight" if name == "query_embed.weight" else name
                ours[f"train/grad/{official}"] = parameter.grad
        model.eval()
    return ours


def check_all(ours: dict, reference: dict, required: list[str]) -> None:
    missing = [name for name in required if name not in ours]
    assert not missing, f"sections not replayed: {missing}"
    compared = 0
    for name, actual in ours.items():
        if name in reference:
            assert_close(name, actual.detach(), reference[name])
            compared += 1
    grads = [name for name in reference if name.startswith("train/grad/")]
    assert all(name in ours for name in grads), f"missing gradients: {[n for n in grads if n not in ours]}"
    assert compared >= len(required)


MAIN_REQUIRED = [
    "tok/pixel_values", "tok/y", "tok/rope_cos", "tok/z", "tok/y_hat", "tok/x_black", "tok/fwd_h1_preds",
    "tok/fwd_h2_preds", "tok_train/y_hat", "tok_train/y_tgt", "roll/preds", "roll/tgts", "roll/ctx", "roll/z",
    "roll/z_hat", "roll/noise", "roll/mean_rollout", "roll/best_idx", "train/z_hat", "train/z_tgt", "train/loss",
    "train/q_samples", "train/bom_preds", "train/bom_losses", "train/bom_best_idx", "train/q_selected",
]


def test_tiny_reference_every_section_matches(reference_dir):
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    reference = load_file(str(reference_dir / "reference_tiny.safetensors"))
    info = json.loads((reference_dir / "reference_tiny.json").read_text())
    model = build_world(reference_dir, None)
    ours = replay(model, reference, info["seeds"], num_samples=info["constructor_overrides"]["num_samples_eval"])
    check_all(ours, reference, MAIN_REQUIRED)
    # Only the predictor is trained: the frozen tokenizer and backbone get no gradient.
    assert all(p.grad is None for p in model.tokenizer.parameters())


@pytest.mark.parametrize(
    "variant, required",
    [
        ("frametok", ["tok/z", "tok/y_hat", "tok/fwd_h2_preds", "tok_train/y_hat", "roll/preds", "roll/z_hat", "roll/best_idx", "train/bom_best_idx"]),
        ("deltaworld_disc", ["roll/preds", "roll/z_hat", "train/z_hat", "train/loss"]),
    ],
)
def test_ablation_reference_matches(reference_dir, variant, required):
    path = reference_dir / "ablation" / f"reference_{variant}.safetensors"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    reference = load_file(str(path))
    info = json.loads((reference_dir / "ablation" / f"reference_{variant}.json").read_text())
    model = build_world(reference_dir, variant)
    ours = replay(model, reference, info["seeds"], num_samples=info["samples_in_rollout"])
    check_all(ours, reference, required)
