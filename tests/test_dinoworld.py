"""DINO-world (ablation steps 0 and 1): configs, masks, Best-of-Many, rollout, save/load, converter, official parity.

Random-weight tiny models prove mechanics and parity only, never forecasting quality.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from deltatok_hf import DinoWorldConfig, DinoWorldForForecasting
from deltatok_hf.convert import convert_official_dinoworld_checkpoint, map_official_dinoworld_key
from deltatok_hf.models.dinoworld import block_causal_mask, spatial_coordinates, token_positions

from test_reference_parity import assert_close, best_sample_index

TIMES = torch.tensor([[0.0, 0.2, 0.4, 0.6, 0.8], [0.0, 0.1875, 0.375, 0.5625, 0.75]])


def tiny_model(use_best_of_many: bool, seed: int = 0, **kwargs) -> DinoWorldForForecasting:
    torch.manual_seed(seed)
    model = DinoWorldForForecasting(DinoWorldConfig.tiny(use_best_of_many=use_best_of_many, **kwargs)).eval()
    # LayerScale starts at 1e-5, which would make every output nearly input-independent; larger values make the
    # mask and perturbation tests meaningful.
    with torch.no_grad():
        for name, parameter in model.predictor.named_parameters():
            if "layer_scale" in name:
                parameter.fill_(0.5)
    return model


def random_features(batch_size=2, num_frames=5, num_patches=16, hidden_size=64, seed=1) -> torch.Tensor:
    return torch.randn(batch_size, num_frames, num_patches, hidden_size, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------------------------------- config


def test_config_defaults_are_the_official_vitb_dinoworld():
    config = DinoWorldConfig()
    assert config.rope_axis_sizes == [20, 20, 20] and config.rope_unrotated_size == 4
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (768, 12, 12)
    assert config.feature_size == 768 and config.patch_size == 16 and config.num_prefix_tokens == 5
    assert config.use_best_of_many is False and config.num_samples_train == 16
    assert config.backbone_name_or_path is not None


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"rope_axis_sizes": (12,)}, "three positive even sizes"),
        ({"rope_axis_sizes": (4, 4, 6)}, "add up to the head size"),
        ({"hidden_size": 66}, "multiple of num_attention_heads"),
        ({"num_samples_train": 0}, "num_samples_train"),
        ({"candidate_chunk_size": 0}, "candidate_chunk_size"),
        ({"noise_std": 0.0}, "noise_std"),
        ({"image_std": (1.0, 0.0, 1.0)}, "image_std"),
    ],
)
def test_config_rejects_bad_values_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DinoWorldConfig.tiny(**kwargs)


def test_config_is_registered_with_the_auto_classes(tmp_path):
    from transformers import AutoConfig, AutoModel

    DinoWorldConfig.tiny(use_best_of_many=True).save_pretrained(tmp_path)
    config = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(config, DinoWorldConfig) and config.use_best_of_many and config.rope_axis_sizes == [4, 4, 4]
    assert isinstance(AutoModel.from_config(config), DinoWorldForForecasting)


# ---------------------------------------------------------------------------------------------- positions and masks


def test_spatial_coordinates_include_the_end_points_and_put_columns_first():
    coordinates = spatial_coordinates(2, 3)  # 2 rows, 3 columns
    expected_w = torch.tensor([-1.0, 0.0, 1.0, -1.0, 0.0, 1.0])
    expected_h = torch.tensor([-1.0, -1.0, -1.0, 1.0, 1.0, 1.0])
    assert torch.equal(coordinates[:, 0], expected_w) and torch.equal(coordinates[:, 1], expected_h)
    assert torch.equal(spatial_coordinates(1, 1), torch.tensor([[-1.0, -1.0]]))  # a one-patch axis gets -1


def test_token_positions_are_frame_major():
    positions = token_positions(torch.tensor([[0.0, 0.5]]), spatial_coordinates(1, 2))
    assert positions.tolist() == [[[0.0, -1.0, -1.0], [0.0, 1.0, -1.0], [0.5, -1.0, -1.0], [0.5, 1.0, -1.0]]]


def test_block_causal_mask_lets_each_frame_see_only_earlier_frames():
    mask = block_causal_mask(3, 3, num_patches=2)
    blocked = torch.isinf(mask)
    # Query token i predicts frame i // 2 + 1 and sees context frames 0 .. i // 2.
    for query in range(6):
        for key in range(6):
            assert bool(blocked[query, key]) == (key // 2 > query // 2)


# ---------------------------------------------------------------------------------------------- training forward


@pytest.mark.parametrize("use_best_of_many", [False, True])
def test_training_forward_shapes(use_best_of_many):
    model = tiny_model(use_best_of_many).train()
    frames = torch.randint(0, 256, (2, 3, 3, 32, 48), generator=torch.Generator().manual_seed(0)).float()
    output = model(frames, TIMES[:, :3], num_samples_train=4, output_candidates=True)
    assert output.loss.shape == () and torch.isfinite(output.loss)
    assert output.predicted_features.shape == (2, 2, 6, 64) == output.target_features.shape
    assert output.selected_queries.shape == (2, 2, 64)
    if use_best_of_many:
        assert output.candidate_queries.shape == (2, 2, 4, 64)
        assert output.candidate_losses.shape == (2, 2, 4) and output.best_candidate_indices.shape == (2, 2)
        assert output.candidate_predictions.shape == (2, 2, 4, 6, 64)
    else:
        assert output.candidate_losses is None and output.candidate_queries is None


@pytest.mark.parametrize("use_best_of_many", [False, True])
def test_perturbing_a_later_frame_changes_no_earlier_prediction(use_best_of_many):
    model = tiny_model(use_best_of_many)
    features = random_features()
    perturbed = features.clone()
    perturbed[:, 2] += 3.0  # frame 2: the target of prediction 1 and context of predictions 2 and 3
    before, after = (
        model(features=clip, timestamps=TIMES, generator=torch.Generator().manual_seed(5), output_candidates=True)
        for clip in (features, perturbed)
    )
    if use_best_of_many:
        # Every candidate's prediction of frames 1 and 2 sees frames 0..1 only (same noise in both runs).
        torch.testing.assert_close(before.candidate_predictions[:, :2], after.candidate_predictions[:, :2], atol=1e-6, rtol=0)
        assert not torch.allclose(before.candidate_predictions[:, 2], after.candidate_predictions[:, 2], atol=1e-3)
        # Frame 1's scores do not involve frame 2 at all.
        assert torch.equal(before.best_candidate_indices[:, 0], after.best_candidate_indices[:, 0])
        torch.testing.assert_close(before.predicted_features[:, 0], after.predicted_features[:, 0], atol=1e-6, rtol=0)
    else:
        torch.testing.assert_close(before.predicted_features[:, :2], after.predicted_features[:, :2], atol=1e-6, rtol=0)
        assert not torch.allclose(before.predicted_features[:, 2], after.predicted_features[:, 2], atol=1e-3)


def test_best_of_many_winner_equals_brute_force():
    model = tiny_model(True)
    features = random_features()
    generator = torch.Generator().manual_seed(3)
    output = model(features=features, timestamps=TIMES, num_samples_train=6, generator=generator, output_candidates=True)
    # Brute force: one predictor call per candidate, its vector at the 16 patches of every target frame.
    context = features[:, :-1].flatten(1, 2)
    coordinates = spatial_coordinates(4, 4)
    query_positions = token_positions(TIMES[:, 1:], coordinates)
    context_positions = token_positions(TIMES[:, :-1], coordinates)
    mask = block_causal_mask(4, 4, 16)
    num_candidates = output.candidate_queries.shape[2]
    losses = torch.empty(2, 4, num_candidates)
    with torch.no_grad():
        for candidate in range(num_candidates):
            queries = output.candidate_queries[:, :, candidate, None].expand(-1, -1, 16, -1).flatten(1, 2)
            predicted = model.predictor(queries, query_positions, context, context_positions, attention_mask=mask)
            errors = torch.nn.functional.smooth_l1_loss(
                predicted.unflatten(1, (4, 16)), features[:, 1:], beta=0.1, reduction="none"
            )
            losses[:, :, candidate] = errors.flatten(2).mean(-1)
    torch.testing.assert_close(output.candidate_losses, losses, atol=1e-6, rtol=1e-5)
    assert torch.equal(output.best_candidate_indices, losses.argmin(-1))
    winner = torch.gather(output.candidate_queries, 2, losses.argmin(-1)[:, :, None, None].expand(-1, -1, 1, 64))
    assert torch.equal(output.selected_queries, winner.squeeze(2))
    # The prediction trained on (re-run with gradients) is the winner's scored prediction.
    chosen = torch.gather(
        output.candidate_predictions, 2, output.best_candidate_indices[:, :, None, None, None].expand(-1, -1, 1, 16, 64)
    ).squeeze(2)
    torch.testing.assert_close(output.predicted_features.detach(), chosen, atol=1e-6, rtol=1e-5)
    assert output.predicted_features.requires_grad and not output.candidate_predictions.requires_grad


def test_chunked_candidate_scoring_matches_one_pass():
    model = tiny_model(True, candidate_chunk_size=None)
    features = random_features()
    one_pass = model(features=features, timestamps=TIMES, generator=torch.Generator().manual_seed(4))
    model.config.candidate_chunk_size = 3
    chunked = model(features=features, timestamps=TIMES, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(chunked.candidate_losses, one_pass.candidate_losses, atol=1e-6, rtol=1e-5)
    assert torch.equal(chunked.best_candidate_indices, one_pass.best_candidate_indices)
    torch.testing.assert_close(chunked.loss, one_pass.loss)


@pytest.mark.parametrize("use_best_of_many", [False, True])
def test_only_the_predictor_and_learned_query_get_gradients(use_best_of_many):
    model = tiny_model(use_best_of_many).train()
    frames = torch.randint(0, 256, (2, 3, 3, 32, 32), generator=torch.Generator().manual_seed(0)).float()
    model(frames, TIMES[:, :3], num_samples_train=3).loss.backward()
    assert all(parameter.grad is None for parameter in model.backbone.parameters())
    assert all(parameter.grad is not None for parameter in model.predictor.parameters())
    if not use_best_of_many:
        assert model.query_embed.weight.grad is not None and model.query_embed.weight.grad.abs().sum() > 0


def test_train_mode_rope_augmentation_follows_the_config():
    frames = torch.randint(0, 256, (1, 2, 3, 32, 32), generator=torch.Generator().manual_seed(0)).float()
    augmented = tiny_model(False).train()
    assert augmented.backbone.training
    torch.manual_seed(0)
    first = augmented.extract_features(frames)
    torch.manual_seed(1)
    assert not torch.allclose(first, augmented.extract_features(frames))  # a different rescale draw
    plain = tiny_model(False, use_rope_augmentation=False).train()
    assert plain.training and not plain.backbone.training
    assert torch.equal(plain.extract_features(frames), plain.eval().extract_features(frames))


def test_training_input_errors_name_the_problem():
    model = tiny_model(False)
    features = random_features()
    with pytest.raises(ValueError, match="exactly one of frames or features"):
        model(timestamps=TIMES)
    with pytest.raises(ValueError, match="timestamps must have shape"):
        model(features=features, timestamps=TIMES[:, :4])
    with pytest.raises(ValueError, match="at least 2 frames"):
        model(features=features[:, :1], timestamps=TIMES[:, :1])
    with pytest.raises(ValueError, match="features must have shape"):
        model(features=features[..., :32], timestamps=TIMES)
    with pytest.raises(ValueError, match="patch size"):
        model(torch.zeros(1, 2, 3, 30, 32), TIMES[:1, :2])


# ---------------------------------------------------------------------------------------------- rollout


def test_generate_returns_the_world_model_forecast_output():
    from deltatok_hf import DeltaWorldForecastOutput

    model = tiny_model(True)
    frames = torch.randint(0, 256, (2, 2, 3, 32, 48), generator=torch.Generator().manual_seed(0)).float()
    output = model.generate(frames, TIMES[:, :2], TIMES[:, 2:], num_samples=3, generator=torch.Generator().manual_seed(0))
    assert isinstance(output, DeltaWorldForecastOutput)
    assert output.future_features.shape == (2, 3, 3, 6, 64)
    assert output.context_features.shape == (2, 2, 6, 64)
    assert output.noise.shape == (2, 3, 3, 64)
    assert output.future_delta_tokens is None and output.context_delta_tokens is None
    assert torch.equal(output.future_timestamps, TIMES[:, 2:])


def test_generate_is_deterministic_per_generator_and_replays_its_noise():
    model = tiny_model(True)
    features = random_features(num_frames=3)
    first = model.generate(features=features, timestamps=TIMES[:, :3], future_timestamps=TIMES[:, 3:], num_samples=4, generator=torch.Generator().manual_seed(7))
    again = model.generate(features=features, timestamps=TIMES[:, :3], future_timestamps=TIMES[:, 3:], num_samples=4, generator=torch.Generator().manual_seed(7))
    other = model.generate(features=features, timestamps=TIMES[:, :3], future_timestamps=TIMES[:, 3:], num_samples=4, generator=torch.Generator().manual_seed(8))
    replay = model.generate(features=features, timestamps=TIMES[:, :3], future_timestamps=TIMES[:, 3:], noise=first.noise)
    assert torch.equal(first.future_features, again.future_features)
    assert not torch.allclose(first.future_features, other.future_features)
    assert torch.equal(first.future_features, replay.future_features)
    # Different noise gives different samples of one clip.
    assert not torch.allclose(first.future_features[:, 0], first.future_features[:, 1])


def test_rollout_feeds_each_prediction_back_as_context():
    model = tiny_model(False)
    features = random_features(num_frames=3)
    two_steps = model.generate(features=features, timestamps=TIMES[:, :3], future_timestamps=TIMES[:, 3:5])
    first = model.generate(features=features, timestamps=TIMES[:, :3], future_timestamps=TIMES[:, 3:4])
    # Step 2 from the context extended by step 1's prediction, as a fresh one-step call.
    extended = torch.cat((features, first.future_features[:, 0]), dim=1)
    second = model.generate(features=extended, timestamps=TIMES[:, :4], future_timestamps=TIMES[:, 4:5])
    torch.testing.assert_close(two_steps.future_features[:, :, 0], first.future_features[:, :, 0], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(two_steps.future_features[:, :, 1], second.future_features[:, :, 0], atol=1e-6, rtol=1e-5)


def test_generate_reports_every_step_and_refuses_undecoded_output():
    model = tiny_model(True)
    features = random_features(num_frames=3)
    steps = []
    output = model.generate(
        features=features, timestamps=TIMES[:, :3], future_timestamps=TIMES[:, 3:], num_samples=2,
        step_callback=lambda step, tokens, predicted: steps.append((step, tokens, predicted.clone())),
    )
    assert [step for step, _, _ in steps] == [0, 1] and all(tokens is None for _, tokens, _ in steps)
    # Sample index fastest, as DeltaWorld's callback.
    assert torch.equal(steps[1][2].unflatten(0, (2, 2)), output.future_features[:, :, 1])
    with pytest.raises(ValueError, match="decode=False"):
        model.generate(features=features, timestamps=TIMES[:, :3], future_timestamps=TIMES[:, 3:], decode=False)


def test_generate_input_errors_name_the_problem():
    model = tiny_model(False)
    features = random_features(num_frames=3)
    with pytest.raises(ValueError, match="deterministic"):
        model.generate(features=features, timestamps=TIMES[:, :3], future_timestamps=TIMES[:, 3:], num_samples=2)
    with pytest.raises(ValueError, match="after the last context time"):
        model.generate(features=features, timestamps=TIMES[:, :3], future_timestamps=TIMES[:, 1:2])
    with pytest.raises(ValueError, match="noise is only used"):
        model.generate(features=features, timestamps=TIMES[:, :3], future_timestamps=TIMES[:, 3:], noise=torch.zeros(2, 1, 2, 64))
    sampler = tiny_model(True)
    with pytest.raises(ValueError, match="noise must have shape"):
        sampler.generate(features=features, timestamps=TIMES[:, :3], future_timestamps=TIMES[:, 3:], noise=torch.zeros(2, 1, 3, 64))
    with pytest.raises(ValueError, match="grid_size"):
        sampler.generate(features=features[:, :, :12], timestamps=TIMES[:, :3], future_timestamps=TIMES[:, 3:])


# ---------------------------------------------------------------------------------------------- save / load


@pytest.mark.parametrize("use_best_of_many", [False, True])
def test_save_and_load_round_trip(tmp_path, use_best_of_many):
    model = tiny_model(use_best_of_many)
    model.save_pretrained(tmp_path)
    loaded = DinoWorldForForecasting.from_pretrained(tmp_path).eval()
    features = random_features(num_frames=3)
    kwargs = {"features": features, "timestamps": TIMES[:, :3], "future_timestamps": TIMES[:, 3:]}
    expected = model.generate(**kwargs, generator=torch.Generator().manual_seed(1))
    actual = loaded.generate(**kwargs, generator=torch.Generator().manual_seed(1))
    assert torch.equal(expected.future_features, actual.future_features)


def test_checkpoint_without_backbone_loads_it_from_backbone_name_or_path(tmp_path):
    model = tiny_model(False)
    model.backbone.save_pretrained(tmp_path / "backbone")
    model.config.backbone_name_or_path = str(tmp_path / "backbone")
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("backbone.")}
    model.save_pretrained(tmp_path / "world", state_dict=state)
    loaded, info = DinoWorldForForecasting.from_pretrained(tmp_path / "world", output_loading_info=True)
    assert info["missing_keys"] == [] and info["backbone_loaded_from"] == str(tmp_path / "backbone")
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


# ---------------------------------------------------------------------------------------------- converter


def test_converter_maps_the_official_names_and_infers_the_variant(tmp_path):
    source = tiny_model(False)
    official = {}
    for key, value in source.state_dict().items():
        if key.startswith("backbone."):
            key = "backbone." + key
        official[key.replace("query_embed.", "q_embed.")] = value
    assert map_official_dinoworld_key("backbone.backbone.norm.weight") == "backbone.norm.weight"
    model, report = convert_official_dinoworld_checkpoint(tmp_path / "out", weights=official, preset="tiny")
    assert not model.config.use_best_of_many and not report.unmatched and not report.missing
    assert report.converted["q_embed.weight"] == "query_embed.weight"
    loaded = DinoWorldForForecasting.from_pretrained(tmp_path / "out")
    assert torch.equal(loaded.query_embed.weight, source.query_embed.weight)
    assert (tmp_path / "out" / "README.md").is_file()
    # Without q_embed the checkpoint is the Best-of-Many variant.
    predictor_only = {k: v for k, v in official.items() if k.startswith("predictor.")}
    bom, bom_report = convert_official_dinoworld_checkpoint(weights=predictor_only, preset="tiny")
    assert bom.config.use_best_of_many and all(key.startswith("backbone.") for key in bom_report.missing)


def test_converter_rejects_keys_that_do_not_fit():
    official = {"predictor.head.weight": torch.zeros(3, 3), "tokenizer.z_embed.weight": torch.zeros(1, 64)}
    with pytest.raises(ValueError, match="tokenizer.z_embed.weight"):
        convert_official_dinoworld_checkpoint(weights=official, preset="tiny")


def test_convert_command_converts_a_dinoworld(tmp_path, capsys):
    from safetensors.torch import save_file

    from deltatok_hf.cli import main

    source = tiny_model(True)
    official = {("backbone." + k if k.startswith("backbone.") else k): v.contiguous() for k, v in source.state_dict().items()}
    save_file(official, str(tmp_path / "dinoworld.safetensors"))
    assert main(["convert", "--dinoworld", str(tmp_path / "dinoworld.safetensors"), "--preset", "tiny", "--output", str(tmp_path / "out")]) == 0
    assert "Best-of-Many" in capsys.readouterr().out
    assert isinstance(DinoWorldForForecasting.from_pretrained(tmp_path / "out"), DinoWorldForForecasting)


# ---------------------------------------------------------------------------------------------- official parity


def _official_weights(reference_dir, variant: str) -> dict[str, torch.Tensor]:
    """The weights the JSON lists: the prefixed keys of the main tiny file, then every key of the variant's file."""
    info = json.loads((reference_dir / "ablation" / f"reference_{variant}.json").read_text())
    weights: dict[str, torch.Tensor] = {}
    for entry in info["weights_files"]:
        tensors = load_file(str(reference_dir / "ablation" / entry["file"]))
        prefixes = tuple(entry["prefixes"])
        selected = {k: v for k, v in tensors.items() if not prefixes or k.startswith(prefixes)}
        assert len(selected) == entry["keys"], entry
        weights.update(selected)
    return weights


@pytest.mark.parametrize("variant", ["dinoworld", "dinoworld_bom"])
def test_dinoworld_reference_every_section_matches(reference_dir, variant):
    path = reference_dir / "ablation" / f"reference_{variant}.safetensors"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    reference = load_file(str(path))
    info = json.loads((reference_dir / "ablation" / f"reference_{variant}.json").read_text())
    seeds, num_samples = info["seeds"], info["samples_in_rollout"]
    model, report = convert_official_dinoworld_checkpoint(weights=_official_weights(reference_dir, variant), preset="tiny")
    assert not report.unmatched and not report.shape_mismatches and not report.missing, report.summary()
    assert model.config.use_best_of_many == info["use_bom"]
    ours: dict[str, torch.Tensor] = {}

    # roll/: eval rollout, 4 context frames and 3 predicted ones; the generator replays the official global seed.
    model.eval()
    frames, timestamps = reference["roll/frames"].float(), reference["roll/timestamps"]
    forecast = model.generate(
        frames[:, :4], timestamps[:, :4], timestamps[:, 4:], num_samples=num_samples,
        generator=torch.Generator().manual_seed(seeds["rollout"]),
    )
    coordinates = spatial_coordinates(4, 4)
    ours["roll/spatial_pos"] = coordinates
    ours["roll/y"] = model.extract_features(frames)
    ours["roll/tgts"] = ours["roll/y"][:, 4:]
    ours["roll/ctx"] = forecast.context_features
    ours["roll/preds"] = forecast.future_features
    ours["roll/mean_rollout"] = forecast.future_features.mean(1)
    ours["roll/step0_pos_q"] = token_positions(timestamps[:, 4:5], coordinates).repeat_interleave(num_samples, 0)
    ours["roll/step0_pos_k"] = token_positions(timestamps[:, :4], coordinates).repeat_interleave(num_samples, 0)
    if model.config.use_best_of_many:
        ours["roll/noise"] = forecast.noise.permute(2, 0, 1, 3)[:, :, :, None]  # (steps, batch, samples, 1, Dp)
        ours["roll/step0_q"] = forecast.noise[:, :, 0].reshape(-1, 1, 64).expand(-1, 16, -1)
        ours["roll/best_idx"] = best_sample_index(forecast.future_features, ours["roll/tgts"])
    else:
        assert forecast.noise is None
        ours["roll/step0_q"] = model.query_embed.weight.expand(2, 16, -1)

    # train/: one training forward in train mode (backbone RoPE rescale draw first, then the candidates).
    model.train()
    torch.manual_seed(seeds["train"])
    ours["train/y"] = model.extract_features(reference["train/frames"].float())  # the same draw as the forward's
    torch.manual_seed(seeds["train"])
    output = model(reference["train/frames"].float(), reference["train/timestamps"], output_candidates=True)
    output.loss.backward()
    train_times = reference["train/timestamps"]
    ours["train/y_hat"], ours["train/y_tgt"], ours["train/loss"] = output.predicted_features, output.target_features, output.loss
    ours["train/pos_q"] = token_positions(train_times[:, 1:], coordinates)
    ours["train/pos_k"] = token_positions(train_times[:, :-1], coordinates)
    ours["train/mask_blocked"] = torch.isinf(block_causal_mask(4, 4, 16))
    if model.config.use_best_of_many:
        ours["train/q_samples"] = output.candidate_queries
        ours["train/bom_preds"] = output.candidate_predictions
        ours["train/bom_losses"] = output.candidate_losses
        ours["train/bom_best_idx"] = output.best_candidate_indices
        ours["train/q_selected"] = output.selected_queries
    for name, parameter in model.named_parameters():
        if parameter.grad is not None:
            ours["train/grad/" + ("q_embed.weight" if name == "query_embed.weight" else name)] = parameter.grad
    model.eval()

    # Every stored tensor has a counterpart except the inputs and the backbone's own RoPE coordinates (internal to
    # transformers' DINOv3; train/y proves the rescale draw).
    skipped = {"roll/frames", "roll/timestamps", "train/frames", "train/timestamps", "train/patch_coords", "train/aug_coords"}
    missing = [name for name in reference if name not in ours and name not in skipped]
    assert not missing, f"not replayed: {missing}"
    for name, actual in ours.items():
        assert_close(name, actual.detach(), reference[name])
    assert all(parameter.grad is None for parameter in model.backbone.parameters())


# ---------------------------------------------------------------------------------------------- training package


@pytest.mark.parametrize("best_of_many", [False, True])
def test_train_dinoworld_trains_saves_and_writes_a_card(tmp_path, best_of_many):
    from deltatok_hf.training.cards import check_card_metadata
    from deltatok_hf.training.dinoworld import DinoWorldTrainingArguments, train_dinoworld

    arguments = DinoWorldTrainingArguments(
        output_dir=str(tmp_path / "run"), frame_size=32, num_frames=3, num_synthetic_videos=4, train_batch_size=2,
        max_train_steps=2, checkpointing_steps=100, logging_steps=1, learning_rate=1e-3, warmup_steps=0,
        best_of_many=best_of_many, num_samples_train=3 if best_of_many else None,
    )
    assert arguments.weight_decay == 0.4  # DeltaWorld's recipe (the official training/world.py)
    summary = train_dinoworld(arguments)
    assert summary["global_step"] == 2 and summary["use_best_of_many"] is best_of_many
    model = DinoWorldForForecasting.from_pretrained(tmp_path / "run")
    assert model.config.use_best_of_many is best_of_many
    assert check_card_metadata(tmp_path / "run" / "README.md")["tags"][0] == "dinoworld"


def test_train_dinoworld_arguments_refuse_candidates_without_best_of_many():
    from deltatok_hf.training.dinoworld import DinoWorldTrainingArguments

    with pytest.raises(ValueError, match="num_samples_train needs best_of_many"):
        DinoWorldTrainingArguments(num_samples_train=4)


# ---------------------------------------------------------------------------------------------- pipeline


@pytest.mark.parametrize("use_best_of_many", [False, True])
def test_the_pipeline_hosts_a_dinoworld(tmp_path, use_best_of_many):
    from deltatok_hf.pipelines import DeltaWorldPipeline

    model = tiny_model(use_best_of_many)
    pipe = DeltaWorldPipeline(world_model=model)
    clip = torch.randint(0, 256, (3, 3, 32, 32), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    num_samples = 4 if use_best_of_many else 1
    out = pipe(clip, fps=5, num_samples=num_samples, num_future_frames=2, size=32, seed=0)
    assert out.future_features.shape == (num_samples, 2, 4, 64)  # (samples, future, patches, hidden)
    assert out.future_delta_tokens is None
    # The pipeline's result is the model's own rollout of the same clip.
    direct = model.generate(
        clip[None].float(), torch.tensor([[0.0, 0.2, 0.4]]), torch.tensor([[0.6, 0.8]]), num_samples=num_samples,
        generator=torch.Generator().manual_seed(0),
    )
    torch.testing.assert_close(out.future_features, direct.future_features[0], atol=1e-5, rtol=1e-4)
    pipe.save_pretrained(tmp_path / "pipe")
    loaded = DeltaWorldPipeline.from_pretrained(tmp_path / "pipe")
    assert isinstance(loaded.world_model, DinoWorldForForecasting)


# ---------------------------------------------------------------------------------------------- the ladder script


@pytest.mark.slow
def test_ladder_script_runs_every_rung_and_writes_its_table(tmp_path):
    import importlib.util

    pytest.importorskip("deltatok_hf.data.synthetic").ForkWorld  # noqa: B018  (the default world)
    script = Path(__file__).resolve().parents[1] / "examples" / "ablation" / "run_ladder.py"
    spec = importlib.util.spec_from_file_location("run_ladder", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    summary = module.main([
        "--steps", "2", "--tokenizer-steps", "2", "--train-clips", "16", "--eval-clips", "2", "--batch-size", "4",
        "--num-samples", "3", "--output", str(tmp_path / "ladder.json"),
    ])
    assert list(summary["rungs"]) == ["dinoworld", "dinoworld_bom", "frame_tokens", "delta_tokens"]
    assert summary["rungs"]["dinoworld"]["num_samples"] == 1 and summary["rungs"]["delta_tokens"]["num_samples"] == 3
    for result in summary["rungs"].values():
        assert 0 < result["mode_coverage"] <= 1 and result["best_of_n_loss"] > 0 and result["mean_of_n_loss"] > 0
        assert result["inference_gflops"] > 0 and result["peak_train_memory_mib"] > 0
    assert json.loads((tmp_path / "ladder.json").read_text())["rungs"].keys() == summary["rungs"].keys()
    assert "| 3: delta tokens" in module.render_table(summary)
