"""Core model mechanics: configs, save/load (local, Hub id, missing backbone), parameter counts, input checks.

All models here have random weights: these tests prove mechanics, never quality.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from transformers import AutoConfig, AutoModel, DINOv3ViTModel

from deltatok_hf import DeltaTokConfig, DeltaTokModel, DeltaWorldConfig, DeltaWorldForForecasting
from deltatok_hf.convert import convert_official_checkpoint, map_official_key
from conftest import open_layer_scales


def random_frames(batch=2, num_frames=3, height=64, width=64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, num_frames, 3, height, width), generator=generator, dtype=torch.uint8)


def make_hub_cache(tmp_path, repo_id: str, source_dir) -> str:
    """A hand-made Hugging Face Hub cache holding `source_dir` as the `main` snapshot of `repo_id`."""
    cache = tmp_path / "hub"
    repo_dir = cache / f"models--{repo_id.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = repo_dir / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for path in source_dir.iterdir():
        shutil.copy(path, snapshot / path.name)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(commit)
    return str(cache)


def test_vitb_parameter_counts_match_official():
    with torch.device("meta"):
        model = DeltaWorldForForecasting(DeltaWorldConfig())
    tokenizer = model.tokenizer
    count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
    encoder = count(tokenizer.encoder_blocks) + tokenizer.z_embed.weight.numel() + tokenizer.xy_embed.weight.numel()
    encoder += count(tokenizer.norm)
    assert count(tokenizer.backbone) == 85_660_416
    assert encoder == 85_192_080
    assert count(tokenizer.decoder_blocks) == 85_188_240
    assert count(model.predictor) == 85_665_024


def test_official_keys_map_onto_our_state_dict(reference_dir):
    for preset, config in (("tiny", DeltaWorldConfig.tiny()), ("vitb", DeltaWorldConfig())):
        keys = json.loads((reference_dir / f"official_keys_{preset}.json").read_text())["keys"]
        with torch.device("meta"):
            model = DeltaWorldForForecasting(config)
        ours = model.state_dict()
        mapped = {}
        for entry in keys:
            new = map_official_key(entry["key"], "deltaworld")
            if new is None:
                assert entry["alias_of"] is not None
                continue
            assert new in ours, entry["key"]
            assert list(ours[new].shape) == entry["shape"], entry["key"]
            mapped[new] = entry
        assert set(mapped) == set(ours), set(ours) ^ set(mapped)


def test_save_pretrained_roundtrip_gives_identical_outputs(tmp_path, tiny_world):
    frames = random_frames(1, 2)
    generator = torch.Generator().manual_seed(3)
    before = tiny_world.generate(frames, [0.0, 0.2], [0.4, 0.6], num_samples=3, generator=generator)
    tiny_world.save_pretrained(tmp_path / "model")
    assert {p.name for p in (tmp_path / "model").iterdir()} >= {"config.json", "model.safetensors"}
    reloaded = AutoModel.from_pretrained(tmp_path / "model").eval()
    assert isinstance(reloaded, DeltaWorldForForecasting)
    generator = torch.Generator().manual_seed(3)
    after = reloaded.generate(frames, [0.0, 0.2], [0.4, 0.6], num_samples=3, generator=generator)
    assert torch.equal(before.future_features, after.future_features)
    assert isinstance(AutoConfig.from_pretrained(tmp_path / "model"), DeltaWorldConfig)


def test_hub_id_loading_offline_from_a_hand_made_cache(tmp_path, monkeypatch, tiny_world):
    tiny_world.save_pretrained(tmp_path / "model")
    cache = make_hub_cache(tmp_path, "someorg/deltaworld-tiny", tmp_path / "model")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = DeltaWorldForForecasting.from_pretrained("someorg/deltaworld-tiny", cache_dir=cache)
    for (name, a), (_, b) in zip(tiny_world.state_dict().items(), model.state_dict().items()):
        assert torch.equal(a, b), name


def test_checkpoint_without_backbone_takes_it_from_the_configured_id(tmp_path, monkeypatch):
    torch.manual_seed(1)
    config = DeltaTokConfig.tiny()
    backbone = DINOv3ViTModel(config.backbone_config)
    backbone.save_pretrained(tmp_path / "backbone")
    cache = make_hub_cache(tmp_path, "someorg/dinov3-tiny", tmp_path / "backbone")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", cache)

    torch.manual_seed(2)
    tokenizer = DeltaTokModel(config)
    tokenizer.config.backbone_name_or_path = "someorg/dinov3-tiny"
    without_backbone = {k: v for k, v in tokenizer.state_dict().items() if not k.startswith("backbone.")}
    tokenizer.save_pretrained(tmp_path / "tokenizer", state_dict=without_backbone)

    loaded, info = DeltaTokModel.from_pretrained(tmp_path / "tokenizer", output_loading_info=True, cache_dir=cache)
    assert info["backbone_loaded_from"] == "someorg/dinov3-tiny"
    assert not info["missing_keys"]
    for name, value in backbone.state_dict().items():
        assert torch.equal(loaded.backbone.state_dict()[name], value), name
    assert torch.equal(loaded.encoder_blocks[0].mlp.up_proj.weight, tokenizer.encoder_blocks[0].mlp.up_proj.weight)


def test_predictor_only_checkpoint_takes_the_tokenizer_from_its_id(tmp_path, tiny_world):
    tiny_world.tokenizer.save_pretrained(tmp_path / "tokenizer")
    tiny_world.config.tokenizer_name_or_path = str(tmp_path / "tokenizer")
    predictor_only = {k: v for k, v in tiny_world.state_dict().items() if k.startswith("predictor.")}
    tiny_world.save_pretrained(tmp_path / "world", state_dict=predictor_only)
    loaded = DeltaWorldForForecasting.from_pretrained(tmp_path / "world")
    for name, value in tiny_world.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value), name


def test_converter_writes_a_loadable_directory(tmp_path, reference_dir):
    model, report = convert_official_checkpoint(
        tmp_path / "converted", weights=reference_dir / "reference_tiny_weights.safetensors", preset="tiny"
    )
    assert len(report.converted) == 173 and len(report.dropped_aliases) == 41 and not report.missing
    reloaded = DeltaWorldForForecasting.from_pretrained(tmp_path / "converted")
    for name, value in model.state_dict().items():
        assert torch.equal(reloaded.state_dict()[name], value), name


def test_converter_reports_unmatched_keys_strictly(tmp_path):
    torch.manual_seed(0)
    model = DeltaTokModel(DeltaTokConfig.tiny())
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("backbone.")}
    torch.save(state, tmp_path / "pytorch_model.bin")
    converted, report = convert_official_checkpoint(tmp_path / "out", deltatok=tmp_path / "pytorch_model.bin", preset="tiny")
    assert isinstance(converted, DeltaTokModel)
    assert report.missing and all(key.startswith("backbone.") for key in report.missing)
    state["encoder_blocks.0.not_a_weight"] = torch.zeros(3)
    torch.save(state, tmp_path / "bad.bin")
    with pytest.raises(ValueError, match="not_a_weight"):
        convert_official_checkpoint(deltatok=tmp_path / "bad.bin", preset="tiny")


def test_official_release_layout_predictor_plus_tokenizer(tmp_path, tiny_world):
    """deltatok-kinetics (tokenizer keys, no prefix, no backbone) + deltaworld-kinetics (predictor.*) combine."""
    state = tiny_world.state_dict()
    tokenizer_state = {k[len("tokenizer."):]: v for k, v in state.items() if k.startswith("tokenizer.") and not k.startswith("tokenizer.backbone.")}
    torch.save(tokenizer_state, tmp_path / "deltatok.bin")
    torch.save({k: v for k, v in state.items() if k.startswith("predictor.")}, tmp_path / "deltaworld.bin")
    model, report = convert_official_checkpoint(
        tmp_path / "converted", deltatok=tmp_path / "deltatok.bin", deltaworld=tmp_path / "deltaworld.bin", preset="tiny"
    )
    card = (tmp_path / "converted" / "README.md").read_text()
    assert "deltatok.bin" in card and "facebook/dinov3-vitb16-pretrain-lvd1689m" in card
    assert not report.unmatched
    assert report.missing and all(k.startswith("tokenizer.backbone.") for k in report.missing)
    assert torch.equal(model.predictor.head.weight, tiny_world.predictor.head.weight)


def test_black_frame_features_are_cached_and_invalidated(tiny_tokenizer):
    first = tiny_tokenizer.black_frame_features(32, 48)
    assert first.shape == (2 * 3, 64)
    assert tiny_tokenizer.black_frame_features(32, 48) is first
    with torch.no_grad():
        tiny_tokenizer.backbone.norm.weight.mul_(2.0)
    assert tiny_tokenizer.black_frame_features(32, 48) is not first


def test_generate_shapes_and_seed_determinism(tiny_world):
    frames = random_frames(2, 3, 32, 48)
    kwargs = dict(timestamps=[0.0, 0.1, 0.25], future_timestamps=[0.3, 0.7], num_samples=4)
    a = tiny_world.generate(frames, generator=torch.Generator().manual_seed(5), **kwargs)
    b = tiny_world.generate(frames, generator=torch.Generator().manual_seed(5), **kwargs)
    c = tiny_world.generate(frames, generator=torch.Generator().manual_seed(6), **kwargs)
    assert a.future_features.shape == (2, 4, 2, 6, 64)
    assert a.future_delta_tokens.shape == (2, 4, 2, 64)
    assert torch.equal(a.future_features, b.future_features)
    assert not torch.allclose(a.future_features, c.future_features)
    # The samples of one clip differ from each other (different noise queries).
    assert (a.future_delta_tokens[:, 0] - a.future_delta_tokens[:, 1]).abs().max() > 0


def test_generate_from_delta_tokens_equals_generate_from_frames(tiny_world):
    frames = random_frames(1, 3)
    timestamps, future = torch.tensor([[0.0, 0.2, 0.4]]), torch.tensor([[0.6, 0.8]])
    from_frames = tiny_world.generate(frames, timestamps, future, num_samples=2, generator=torch.Generator().manual_seed(0))
    from_tokens = tiny_world.generate(
        delta_tokens=from_frames.context_delta_tokens,
        last_features=from_frames.context_features[:, -1],
        timestamps=timestamps,
        future_timestamps=future,
        noise=from_frames.noise,
    )
    torch.testing.assert_close(from_tokens.future_features, from_frames.future_features, atol=1e-6, rtol=1e-5)


def test_generate_encodes_only_context_frames(tiny_world):
    calls = []
    tiny_world.tokenizer.backbone.register_forward_hook(
        lambda module, args, kwargs, output: calls.append(kwargs["pixel_values"].shape[0]), with_kwargs=True
    )
    frames = random_frames(2, 3)
    tiny_world.generate(frames, [0.0, 0.1, 0.2], [0.3, 0.4, 0.5], num_samples=5)
    tiny_world.generate(frames, [0.0, 0.1, 0.2], [0.3, 0.4, 0.5], num_samples=5)
    # First call: the 2 x 3 context frames plus one black frame; second call: the black frame is cached.
    assert calls == [6, 1, 6]


def test_training_forward_from_delta_tokens_needs_no_backbone(tiny_world):
    tiny_world.train()
    tiny_world.tokenizer.backbone.register_forward_hook(lambda *args: pytest.fail("backbone was called"))
    tokens = torch.randn(2, 5, 64)
    output = tiny_world(delta_tokens=tokens, timestamps=torch.tensor([0.0, 0.1, 0.2, 0.3, 0.4]), num_samples_train=8)
    output.loss.backward()
    assert output.candidate_losses.shape == (2, 4, 8)
    assert torch.equal(output.candidate_losses.argmin(-1), output.best_candidate_indices)
    assert tiny_world.predictor.head.weight.grad is not None


def test_deterministic_variant_has_a_learned_query_and_one_future():
    torch.manual_seed(0)
    model = DeltaWorldForForecasting(DeltaWorldConfig.tiny(use_best_of_many=False)).eval()
    assert model.query_embed.weight.shape == (1, 64)
    out = model.generate(random_frames(1, 2), [0.0, 0.1], [0.2])
    assert out.future_features.shape[1] == 1 and out.noise is None
    with pytest.raises(ValueError, match="deterministic"):
        model.generate(random_frames(1, 2), [0.0, 0.1], [0.2], num_samples=4)


def test_tokenizer_losses_and_rollout_modes(tiny_tokenizer):
    # With the official LayerScale init (1e-5) the blocks are near identities; open them up so the modes differ.
    with torch.no_grad():
        for name, parameter in tiny_tokenizer.named_parameters():
            if name.endswith("lambda1") and not name.startswith("backbone."):
                parameter.fill_(0.5)
    frames = random_frames(1, 3)
    tiny_tokenizer.config.reconstruction_loss = "mse"
    mse = tiny_tokenizer(frames).loss
    tiny_tokenizer.config.reconstruction_loss = "log_cosh"
    log_cosh = tiny_tokenizer(frames).loss
    assert mse > 0 and log_cosh > 0 and not torch.isclose(mse, log_cosh)
    closed = tiny_tokenizer.reconstruct(frames, num_steps=2, mode="closed_loop")
    parallel = tiny_tokenizer.reconstruct(frames, num_steps=2, mode="parallel")
    torch.testing.assert_close(closed.reconstructions[:, 0], parallel.reconstructions[:, 0])
    assert not torch.allclose(closed.reconstructions[:, 1], parallel.reconstructions[:, 1])


def test_rope_augmentation_switch(tiny_tokenizer):
    frames = random_frames(1, 2)
    tiny_tokenizer.train()
    torch.manual_seed(0)
    a = tiny_tokenizer(frames).reconstruction
    torch.manual_seed(1)
    b = tiny_tokenizer(frames).reconstruction
    assert not torch.allclose(a, b)  # the RoPE rescale draw changes the result in train mode
    tiny_tokenizer.config.use_rope_augmentation = False
    tiny_tokenizer.train()
    assert not tiny_tokenizer.backbone.training
    torch.manual_seed(0)
    c = tiny_tokenizer(frames).reconstruction
    torch.manual_seed(1)
    d = tiny_tokenizer(frames).reconstruction
    assert torch.equal(c, d)


# ---------------------------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(frames=torch.zeros(3, 3, 64, 64)), "batch_size, num_frames, 3"),
        (dict(frames=torch.zeros(1, 2, 3, 60, 64)), "multiple of the patch size"),
        (dict(timestamps=[0.0, 0.1, 0.2]), r"shape \(1, 2\)"),
        (dict(timestamps=[0.1, 0.1]), "strictly increasing"),
        (dict(future_timestamps=[0.05]), "after the last context time"),
        (dict(future_timestamps=[0.5, 0.3]), "strictly increasing"),
        (dict(num_samples=0), "num_samples"),
        (dict(num_samples=-2), "num_samples"),
        (dict(noise=torch.zeros(1, 2, 3, 64)), "noise must have shape"),
    ],
)
def test_generate_rejects_bad_inputs(tiny_world, kwargs, match):
    call = dict(frames=torch.zeros(1, 2, 3, 64, 64), timestamps=[0.0, 0.1], future_timestamps=[0.2], num_samples=2)
    call.update(kwargs)
    with pytest.raises(ValueError, match=match):
        tiny_world.generate(**call)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: DeltaWorldConfig.tiny(delta_token_size=32), "delta_token_size"),
        (lambda: DeltaTokConfig.tiny(hidden_size=128), "hidden_size"),
        (lambda: DeltaWorldConfig.tiny(rope_axis_sizes=(10,)), "head size"),
        (lambda: DeltaWorldConfig.tiny(hidden_size=66), "multiple of num_attention_heads"),
        (lambda: DeltaWorldConfig.tiny(num_samples_eval=0), "num_samples"),
        (lambda: DeltaTokConfig.tiny(reconstruction_loss="l1"), "reconstruction_loss"),
        (lambda: DeltaTokConfig.tiny(num_encoder_layers=0), "num_encoder_layers"),
    ],
)
def test_configs_reject_bad_values(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_training_forward_rejects_bad_inputs(tiny_world):
    with pytest.raises(ValueError, match="at least 2 frames"):
        tiny_world(delta_tokens=torch.zeros(1, 1, 64), timestamps=[0.0])
    with pytest.raises(ValueError, match="delta_tokens must have shape"):
        tiny_world(delta_tokens=torch.zeros(1, 3, 32), timestamps=[0.0, 0.1, 0.2])
    with pytest.raises(ValueError, match="exactly one"):
        tiny_world(timestamps=[0.0, 0.1])


def test_tokenizer_rejects_bad_features(tiny_tokenizer):
    with pytest.raises(ValueError, match="shape"):
        tiny_tokenizer.encode(torch.zeros(1, 16, 32), torch.zeros(1, 16, 32))
    with pytest.raises(ValueError, match="grid_size"):
        tiny_tokenizer.encode(torch.zeros(1, 6, 64), torch.zeros(1, 6, 64))
    with pytest.raises(ValueError, match="num_steps"):
        tiny_tokenizer.reconstruct(random_frames(1, 2), num_steps=3)


def test_official_initialisation():
    torch.manual_seed(0)
    model = DeltaWorldForForecasting(DeltaWorldConfig.tiny(use_best_of_many=False))
    for module in (model.tokenizer.encoder_blocks, model.tokenizer.decoder_blocks, model.predictor):
        for name, parameter in module.named_parameters():
            if name.endswith("lambda1"):
                assert torch.all(parameter == 1e-5), name
            elif name.endswith("bias") and "norm" not in name:
                assert torch.all(parameter == 0), name
            elif name.endswith("weight") and parameter.ndim == 2:
                # trunc_normal_(std=0.02) with the default absolute bounds of +-2, as the official code.
                assert 0.015 < parameter.std().item() < 0.025, name
    assert 0.01 < model.query_embed.weight.std().item() < 0.03
    # The backbone keeps DINOv3's own initialisation (LayerScale 1.0) and is frozen.
    assert torch.all(model.tokenizer.backbone.model.layer[0].layer_scale1.lambda1 == 1.0)
    assert not any(p.requires_grad for p in model.tokenizer.parameters())
    assert all(p.requires_grad for p in model.predictor.parameters())


def test_gradient_checkpointing_gives_the_same_tokenizer_gradients():
    config = DeltaTokConfig.tiny(use_rope_augmentation=False)
    frames = random_frames(2, 2)
    gradients = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = DeltaTokModel(config).train()
        if checkpointing:
            model.activation_checkpointing_enable()
            assert model.decoder_blocks[0].gradient_checkpointing
        model(frames).loss.backward()
        gradients.append(model.encoder_blocks[0].attention.q_proj.weight.grad.clone())
    torch.testing.assert_close(gradients[0], gradients[1], atol=1e-7, rtol=1e-6)
    assert gradients[0].abs().sum() > 0


@pytest.mark.parametrize("chunk_size", [1, 7, 40], ids=["one_candidate_per_pass", "uneven_passes", "five_per_pass"])
def test_chunked_scoring_picks_the_same_winners_as_unchunked(chunk_size):
    # Raised LayerScales so that candidates really differ (at the 1e-5 init they are nearly tied).
    torch.manual_seed(0)
    model = open_layer_scales(DeltaWorldForForecasting(DeltaWorldConfig.tiny(num_samples_train=24)).train())
    delta_tokens, timestamps = torch.randn(2, 5, 64), torch.tensor([0.0, 0.2, 0.4, 0.6, 0.8])  # 2 x 4 targets

    def run(candidate_chunk_size):
        model.config.candidate_chunk_size = candidate_chunk_size
        model.zero_grad(set_to_none=True)
        output = model(
            delta_tokens=delta_tokens, timestamps=timestamps, generator=torch.Generator().manual_seed(1),
            output_candidates=True,
        )
        output.loss.backward()
        return output, model.predictor.head.weight.grad.clone()

    unchunked, unchunked_gradient = run(None)
    chunked, chunked_gradient = run(chunk_size)  # 8 targets: passes of max(1, chunk_size // 8) candidates
    assert unchunked.best_candidate_indices.unique().numel() > 1  # a real choice was made
    assert torch.equal(chunked.best_candidate_indices, unchunked.best_candidate_indices)
    torch.testing.assert_close(chunked.candidate_losses, unchunked.candidate_losses, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(chunked.candidate_predictions, unchunked.candidate_predictions, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(chunked.loss, unchunked.loss, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(chunked_gradient, unchunked_gradient, atol=1e-6, rtol=1e-5)


def test_from_tokenizer_builds_a_world_model_over_the_trained_tokenizer(tiny_tokenizer):
    with torch.no_grad():
        tiny_tokenizer.z_embed.weight.normal_()  # a "trained" tokenizer: weights a fresh one would not have
    config = DeltaWorldConfig.tiny(num_samples_train=3)
    model = DeltaWorldForForecasting.from_tokenizer(tiny_tokenizer, config)
    for name, parameter in tiny_tokenizer.state_dict().items():
        assert torch.equal(model.tokenizer.state_dict()[name], parameter), name
    assert not any(parameter.requires_grad for parameter in model.tokenizer.parameters())
    assert model.config.tokenizer_config.to_dict() == tiny_tokenizer.config.to_dict()
    assert model.config.tokenizer_config is not tiny_tokenizer.config and model.config is not config
    assert model.config.num_samples_train == 3
    with pytest.raises(TypeError, match="tokenizer must be a DeltaTokModel"):
        DeltaWorldForForecasting.from_tokenizer(model, config)
