"""The RGB decoder (features -> pixels): parity with the official `RGBHead`, conversion, I/O and input checks.

Random-weight models here prove mechanics and parity only, never image quality.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from deltatok_hf import DeltaTokRGBDecoder, DeltaTokRGBDecoderConfig, rgb_to_uint8
from deltatok_hf.convert import convert_official_rgb_decoder

SHARED_DIR = Path(__file__).resolve().parents[2] / "shared"
RGB_REFERENCE_DIR = SHARED_DIR / "reference" / "rgb_head"
ATOL, RTOL = 1e-5, 1e-4
# The tiny reference head has 4 heads; the one size its tensors do not show.
TINY_HEADS = DeltaTokRGBDecoderConfig.tiny().num_attention_heads


@pytest.fixture(scope="module")
def rgb_reference() -> dict:
    weights = RGB_REFERENCE_DIR / "reference_rgb_head_weights.safetensors"
    if not weights.is_file():
        pytest.skip(f"official RGB-head reference tensors not found at {RGB_REFERENCE_DIR}")
    return {
        "weights": load_file(str(weights)),
        "tensors": load_file(str(RGB_REFERENCE_DIR / "reference_rgb_head.safetensors")),
        # The backbone whose final LayerNorm the head undoes (see the README there).
        "backbone_weights": RGB_REFERENCE_DIR.parent / "reference_tiny_weights.safetensors",
    }


@pytest.fixture(scope="module")
def converted(rgb_reference):
    decoder, report = convert_official_rgb_decoder(
        rgb_reference["weights"], feature_norm=rgb_reference["backbone_weights"], num_attention_heads=TINY_HEADS
    )
    return decoder, report


def tiny_decoder(**overrides) -> DeltaTokRGBDecoder:
    torch.manual_seed(0)
    decoder = DeltaTokRGBDecoder(DeltaTokRGBDecoderConfig.tiny(**overrides)).eval()
    size = decoder.config.feature_size
    decoder.set_feature_norm(torch.rand(size) + 0.5, torch.randn(size) * 0.1)
    return decoder


# ---------------------------------------------------------------------------------------------- parity


@pytest.mark.parametrize("grid", ["grid0", "grid1"], ids=["trained_square_4x4", "resized_table_3x5"])
def test_converted_official_head_reproduces_the_reference_pixels(converted, rgb_reference, grid):
    decoder, _ = converted
    features = rgb_reference["tensors"][f"{grid}/features"]
    expected = rgb_reference["tensors"][f"{grid}/pixels"]
    with torch.no_grad():
        pixels = decoder(features).pixel_values
    assert pixels.shape == expected.shape
    torch.testing.assert_close(pixels, expected, atol=ATOL, rtol=RTOL)


def test_sdpa_and_eager_attention_agree_on_the_reference(converted, rgb_reference):
    decoder, _ = converted
    features = rgb_reference["tensors"]["grid1/features"]
    outputs = {}
    try:
        for implementation in ("eager", "sdpa"):
            decoder.set_attn_implementation(implementation)
            with torch.no_grad():
                outputs[implementation] = decoder(features).pixel_values
    finally:
        decoder.set_attn_implementation("sdpa")
    torch.testing.assert_close(outputs["sdpa"], outputs["eager"], atol=ATOL, rtol=RTOL)


def test_position_table_is_the_official_sincos_table(converted, rgb_reference):
    decoder, _ = converted
    official = rgb_reference["weights"]["decoder_pos_embed"][0]  # (1 + patches, hidden), cls row zero
    assert torch.equal(official[0], torch.zeros_like(official[0]))
    assert torch.equal(decoder.position_embeddings(4, 4), official[1:])


# ---------------------------------------------------------------------------------------------- conversion


def test_reference_weights_convert_with_no_missing_or_unexpected_keys(converted, rgb_reference):
    decoder, report = converted
    assert not report.unmatched and not report.shape_mismatches and not report.missing, report.summary()
    assert set(report.converted) == set(rgb_reference["weights"])  # every official key has a place
    assert decoder.has_feature_norm
    backbone = load_file(str(rgb_reference["backbone_weights"]))
    assert torch.equal(decoder.feature_norm_weight, backbone["tokenizer.backbone.backbone.norm.weight"])
    assert torch.equal(decoder.feature_norm_bias, backbone["tokenizer.backbone.backbone.norm.bias"])


def test_a_renamed_key_is_reported_by_name(rgb_reference):
    weights = dict(rgb_reference["weights"])
    weights["decoder_layers.1.attention.attention.kee.weight"] = weights.pop("decoder_layers.1.attention.attention.key.weight")
    with pytest.raises(ValueError, match=r"kee\.weight[\s\S]*missing: layers\.1\.attention\.k_proj\.weight"):
        convert_official_rgb_decoder(weights, num_attention_heads=TINY_HEADS)
    _, report = convert_official_rgb_decoder(weights, num_attention_heads=TINY_HEADS, strict=False)
    assert report.unmatched == ["decoder_layers.1.attention.attention.kee.weight"]
    assert "layers.1.attention.k_proj.weight" in report.missing


def test_a_wrong_shape_and_a_wrong_position_table_are_reported(rgb_reference):
    weights = dict(rgb_reference["weights"])
    weights["decoder_norm.weight"] = torch.ones(32)
    weights["decoder_pos_embed"] = weights["decoder_pos_embed"] + 0.1
    _, report = convert_official_rgb_decoder(weights, num_attention_heads=TINY_HEADS, strict=False)
    assert any(item.startswith("decoder_norm.weight: checkpoint (32,)") for item in report.shape_mismatches)
    assert any(item.startswith("decoder_pos_embed (values differ") for item in report.unmatched)


def test_sizes_are_read_from_the_checkpoint_and_a_disagreeing_size_raises(rgb_reference):
    decoder, report = convert_official_rgb_decoder(rgb_reference["weights"], num_attention_heads=TINY_HEADS)
    config = decoder.config
    assert (config.feature_size, config.hidden_size, config.num_hidden_layers, config.intermediate_size) == (64, 64, 2, 128)
    assert (config.patch_size, config.image_size) == (16, 64)
    # No feature-norm source: listed as missing and decoding refuses, rather than decoding with a wrong affine.
    assert sorted(report.missing) == ["feature_norm_bias", "feature_norm_weight"]
    assert not decoder.has_feature_norm
    with pytest.raises(ValueError, match="num_hidden_layers=3"):
        convert_official_rgb_decoder(rgb_reference["weights"], num_attention_heads=TINY_HEADS, num_hidden_layers=3)


def test_official_pickle_file_converts_and_saves(tmp_path, rgb_reference):
    checkpoint = tmp_path / "pytorch_model.bin"
    torch.save({"state_dict": rgb_reference["weights"]}, checkpoint)  # Lightning-style wrapper, as `load_sd` accepts
    output = tmp_path / "converted"
    convert_official_rgb_decoder(
        checkpoint, feature_norm=rgb_reference["backbone_weights"], output_dir=output, num_attention_heads=TINY_HEADS
    )
    reloaded = DeltaTokRGBDecoder.from_pretrained(output).eval()
    features = rgb_reference["tensors"]["grid0/features"]
    with torch.no_grad():
        pixels = reloaded(features).pixel_values
    torch.testing.assert_close(pixels, rgb_reference["tensors"]["grid0/pixels"], atol=ATOL, rtol=RTOL)


def test_convert_command_writes_a_decoder(tmp_path, rgb_reference):
    from deltatok_hf.cli import main

    weights = tmp_path / "head.safetensors"
    save_file(rgb_reference["weights"], str(weights))
    output = tmp_path / "rgb"
    arguments = ["convert", "--rgb-head", str(weights), "--output", str(output), "--preset", "tiny"]
    assert main([*arguments, "--rgb-feature-norm", str(rgb_reference["backbone_weights"])]) == 0
    decoder = DeltaTokRGBDecoder.from_pretrained(output)
    assert decoder.config.num_attention_heads == TINY_HEADS and decoder.has_feature_norm
    assert main([*arguments, "--weights", str(weights)]) == 2  # an RGB head converts on its own


def test_feature_norm_is_not_taken_from_a_tokenizer_norm(tmp_path):
    # A DeltaTok state dict without backbone has a `norm.*` that is the delta-token LayerNorm, not the backbone's.
    from deltatok_hf.convert.rgb_decoder import load_feature_norm

    with pytest.raises(ValueError, match="No backbone final LayerNorm"):
        load_feature_norm({"norm.weight": torch.ones(64), "norm.bias": torch.zeros(64)})


# ---------------------------------------------------------------------------------------------- model behaviour


def test_save_and_load_round_trip_keeps_weights_and_feature_norm(tmp_path):
    from transformers import AutoModel

    decoder = tiny_decoder()
    decoder.save_pretrained(tmp_path)
    reloaded = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(reloaded, DeltaTokRGBDecoder)
    assert torch.equal(reloaded.feature_norm_weight, decoder.feature_norm_weight)
    assert torch.equal(reloaded.position_table, decoder.position_table)  # rebuilt, not stored
    features = torch.randn(2, 64, 4, 4)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(features).pixel_values, decoder(features).pixel_values, atol=0, rtol=0)


def test_unset_feature_norm_refuses_to_decode_until_set():
    decoder = DeltaTokRGBDecoder(DeltaTokRGBDecoderConfig.tiny()).eval()
    assert not decoder.has_feature_norm
    with pytest.raises(RuntimeError, match="copy_feature_norm_from"):
        decoder(torch.randn(1, 64, 2, 2))
    decoder.set_feature_norm(torch.ones(64), torch.zeros(64))
    assert torch.isfinite(decoder(torch.randn(1, 64, 2, 2)).pixel_values).all()


def test_feature_norm_is_copied_from_the_backbone_of_a_deltatok_and_a_deltaworld(tiny_tokenizer, tiny_world):
    for model, backbone in ((tiny_tokenizer, tiny_tokenizer.backbone), (tiny_world, tiny_world.tokenizer.backbone)):
        with torch.no_grad():
            backbone.norm.weight.uniform_(0.5, 1.5)
            backbone.norm.bias.normal_()
        decoder = DeltaTokRGBDecoder(DeltaTokRGBDecoderConfig.tiny())
        decoder.copy_feature_norm_from(model)
        assert torch.equal(decoder.feature_norm_weight, backbone.norm.weight)
        assert torch.equal(decoder.feature_norm_bias, backbone.norm.bias)


def test_copying_the_feature_norm_checks_width_and_image_statistics(tiny_tokenizer):
    with pytest.raises(ValueError, match=r"shape \(32,\)"):
        DeltaTokRGBDecoder(DeltaTokRGBDecoderConfig.tiny(feature_size=32)).copy_feature_norm_from(tiny_tokenizer)
    with pytest.raises(ValueError, match="image_mean"):
        DeltaTokRGBDecoder(DeltaTokRGBDecoderConfig.tiny(image_mean=(0.5, 0.5, 0.5))).copy_feature_norm_from(tiny_tokenizer)
    with pytest.raises(TypeError, match="DeltaTokModel"):
        DeltaTokRGBDecoder(DeltaTokRGBDecoderConfig.tiny()).copy_feature_norm_from(torch.nn.Linear(64, 64))


def test_token_and_grid_inputs_decode_the_same_non_square_frame():
    decoder = tiny_decoder()
    grid = torch.randn(2, 64, 3, 5)  # (batch, feature_size, rows, columns)
    tokens = grid.flatten(2).transpose(1, 2)  # (batch, 15, feature_size), raster order
    with torch.no_grad():
        from_grid = decoder(grid).pixel_values
        from_tokens = decoder(tokens, grid_size=(3, 5)).pixel_values
        transposed = decoder(tokens, grid_size=(5, 3)).pixel_values
    assert from_grid.shape == (2, 3, 48, 80)
    torch.testing.assert_close(from_tokens, from_grid, atol=0, rtol=0)
    assert transposed.shape == (2, 3, 80, 48)


def test_position_tables_are_cached_per_grid():
    decoder = tiny_decoder()
    assert decoder.position_embeddings(3, 5) is decoder.position_embeddings(3, 5)
    assert decoder.position_embeddings(3, 5).shape == (15, 64)


@pytest.mark.parametrize(
    "features, grid_size, message",
    [
        (torch.randn(2, 15, 64), None, "grid_size=.*required"),
        (torch.randn(2, 15, 64), (4, 4), "holds 16 patches"),
        (torch.randn(2, 64, 3, 5), (5, 3), "disagrees"),
        (torch.randn(2, 32, 3, 5), None, "must have shape"),
        (torch.ones(2, 15, 64, dtype=torch.long), (3, 5), "floating-point"),
    ],
)
def test_bad_inputs_raise_naming_the_problem(features, grid_size, message):
    with pytest.raises(ValueError, match=message):
        tiny_decoder()(features, grid_size=grid_size)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"num_attention_heads": 5}, "divisible"),
        ({"hidden_size": 0}, "hidden_size"),
        ({"num_hidden_layers": 1.5}, "num_hidden_layers"),
        ({"image_size": 72}, "multiple of `patch_size"),
        ({"hidden_size": 66, "num_attention_heads": 2}, "multiple of 4"),
        ({"layer_norm_eps": -1.0}, "layer_norm_eps"),
        ({"hidden_dropout_prob": 1.0}, "hidden_dropout_prob"),
        ({"image_std": (0.2, 0.0, 0.2)}, "image_std"),
        ({"image_mean": (0.5, 0.5)}, "image_mean"),
        ({"hidden_act": "nope"}, "hidden_act"),
    ],
)
def test_bad_config_values_raise(overrides, message):
    with pytest.raises(ValueError, match=message):
        DeltaTokRGBDecoderConfig.tiny(**overrides)


def test_bad_values_given_to_from_pretrained_raise(tmp_path):
    DeltaTokRGBDecoderConfig.tiny().save_pretrained(tmp_path)
    assert DeltaTokRGBDecoderConfig.from_pretrained(tmp_path).num_attention_heads == 4
    with pytest.raises(ValueError, match="divisible"):
        DeltaTokRGBDecoderConfig.from_pretrained(tmp_path, num_attention_heads=5)


def test_default_config_is_the_released_head():
    config = DeltaTokRGBDecoderConfig()
    released = (768, 1152, 28, 16, 4096, 16, 512, 1e-12)
    assert (
        config.feature_size,
        config.hidden_size,
        config.num_hidden_layers,
        config.num_attention_heads,
        config.intermediate_size,
        config.patch_size,
        config.image_size,
        config.layer_norm_eps,
    ) == released


def test_rgb_to_uint8_clamps_and_rounds():
    pixels = torch.tensor([-0.2, 0.0, 0.5, 0.7, 1.0, 1.3])
    assert rgb_to_uint8(pixels).tolist() == [0, 0, 128, 178, 255, 255]
    assert rgb_to_uint8(pixels).dtype == torch.uint8


# ---------------------------------------------------------------------------------------------- training
# Random tiny backbones and synthetic frames: the losses prove the training mechanics, not image quality.


@pytest.fixture
def one_thread():
    """Tiny models run fastest on one thread; on a shared machine more threads only contend."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_training_arguments(tmp_path, **overrides):
    from deltatok_hf.training.rgb_decoder import RGBDecoderTrainingArguments

    values = {
        "train_data": "synthetic",
        "frame_size": 32,
        "num_synthetic_videos": 4,
        "train_batch_size": 2,
        "output_dir": str(tmp_path / "rgb_decoder"),
    }
    values.update(overrides)
    return RGBDecoderTrainingArguments(**values)


def test_train_rgb_decoder_writes_checkpoints_and_a_decoder_that_loads(tmp_path, monkeypatch, one_thread):
    import json

    from deltatok_hf.training.rgb_decoder import train_rgb_decoder

    monkeypatch.setenv("ACCELERATE_USE_CPU", "1")
    arguments = tiny_training_arguments(tmp_path, max_train_steps=3, checkpointing_steps=2, warmup_steps=0)
    summary = train_rgb_decoder(arguments)
    output_dir = Path(arguments.output_dir)
    losses = list(summary["losses"].values())
    assert len(losses) == 3 and all(torch.isfinite(torch.tensor(losses)))
    assert summary["pixel_loss"] == "l1"
    assert (output_dir / "checkpoint-2" / "model.safetensors").is_file()
    assert json.loads((output_dir / "checkpoint-2" / "trainer_state.json").read_text())["global_step"] == 2
    decoder = DeltaTokRGBDecoder.from_pretrained(output_dir)
    assert decoder.has_feature_norm and decoder.config.image_size == 32  # the trained grid is the training crop
    DeltaTokRGBDecoder.from_pretrained(output_dir / "checkpoint-2")
    assert "random tiny backbone" in (output_dir / "README.md").read_text()


def test_resumed_training_ends_with_the_weights_of_an_uninterrupted_run(tmp_path, monkeypatch, one_thread):
    # The checkpoint hooks reload the decoder with from_pretrained, feature-norm buffers included.
    from deltatok_hf.training.rgb_decoder import train_rgb_decoder

    monkeypatch.setenv("ACCELERATE_USE_CPU", "1")
    common = {"checkpointing_steps": 2, "warmup_steps": 0, "learning_rate": 1e-3}
    train_rgb_decoder(tiny_training_arguments(tmp_path, output_dir=str(tmp_path / "full"), max_train_steps=3, **common))
    train_rgb_decoder(tiny_training_arguments(tmp_path, output_dir=str(tmp_path / "cut"), max_train_steps=2, **common))
    summary = train_rgb_decoder(
        tiny_training_arguments(
            tmp_path, output_dir=str(tmp_path / "cut"), max_train_steps=3, resume_from_checkpoint="latest", **common
        )
    )
    assert summary["resumed_from"].endswith("checkpoint-2")
    full = DeltaTokRGBDecoder.from_pretrained(tmp_path / "full").state_dict()
    resumed = DeltaTokRGBDecoder.from_pretrained(tmp_path / "cut").state_dict()
    assert full.keys() == resumed.keys()
    assert all(torch.equal(full[key], resumed[key]) for key in full)


@pytest.mark.parametrize("pixel_loss", ["l1", "mse"])
def test_pixel_loss_decreases_on_a_fixed_batch(tmp_path, pixel_loss, one_thread):
    from deltatok_hf.training import build_clip_dataset, build_optimizer, collate_training_clips
    from deltatok_hf.training.rgb_decoder import RGBDecoderLoss, build_feature_model, build_rgb_decoder

    torch.manual_seed(0)
    arguments = tiny_training_arguments(tmp_path, pixel_loss=pixel_loss)
    feature_model = build_feature_model(arguments)
    decoder = build_rgb_decoder(arguments, feature_model).train()
    assert torch.equal(decoder.feature_norm_weight, feature_model.backbone.norm.weight)
    dataset = build_clip_dataset(arguments)
    batch = collate_training_clips([dataset[0], dataset[1]])  # (2, 2, 3, 32, 32) frames, fixed
    compute_loss = RGBDecoderLoss(feature_model, pixel_loss)
    optimizer = build_optimizer(decoder, learning_rate=3e-3, weight_decay=0.0)
    losses = []
    for _ in range(20):
        loss = compute_loss(decoder, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses))), losses
    assert sum(losses[-3:]) / 3 < 0.5 * losses[0], losses
    assert all(parameter.grad is None for parameter in feature_model.parameters())  # the backbone stays frozen


def test_training_arguments_parse_like_the_example_and_check_values(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "train_rgb_decoder", Path(__file__).resolve().parents[1] / "examples" / "train_rgb_decoder.py"
    )
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    parsed = example.parse_args(["--pixel_loss", "mse", "--model_config", "vitb", "--output_dir", str(tmp_path)])
    assert (parsed.pixel_loss, parsed.model_config, parsed.num_frames) == ("mse", "vitb", 2)
    with pytest.raises(ValueError, match="pixel_loss"):
        tiny_training_arguments(tmp_path, pixel_loss="lpips")
    with pytest.raises(ValueError, match="expected a DeltaTok or a DeltaWorld"):
        from deltatok_hf.training.rgb_decoder import build_feature_model

        tiny_decoder().save_pretrained(tmp_path / "not_a_backbone")
        build_feature_model(tiny_training_arguments(tmp_path, feature_model=str(tmp_path / "not_a_backbone")))
