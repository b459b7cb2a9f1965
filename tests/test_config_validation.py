"""Configs reject out-of-range values when built or loaded (before any weight is read); valid ones still load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from deltatok_hf import DeltaTokConfig, DeltaWorldConfig, DeltaWorldForForecasting
from deltatok_hf.models.heads import DeltaTokDepthHeadConfig, DeltaTokSegmentationHeadConfig

# The shipped demo pipeline keeps its world model in a component folder.
DEMO_MODEL_DIR = Path(__file__).resolve().parents[1] / "src" / "deltatok_hf" / "assets" / "demo_model" / "world_model"


@pytest.mark.parametrize(
    "make, field",
    [
        (lambda: DeltaWorldConfig.tiny(hidden_size=-64), "hidden_size"),
        (lambda: DeltaWorldConfig.tiny(num_hidden_layers=0), "num_hidden_layers"),
        (lambda: DeltaWorldConfig.tiny(num_attention_heads=0), "num_attention_heads"),
        (lambda: DeltaWorldConfig.tiny(num_attention_heads=3), "num_attention_heads=3"),
        (lambda: DeltaWorldConfig.tiny(intermediate_size=-1), "intermediate_size"),
        (lambda: DeltaWorldConfig.tiny(rope_axis_sizes=(14,)), "head size"),
        (lambda: DeltaWorldConfig.tiny(rope_axis_sizes=(11,), rope_unrotated_size=5), "even"),
        (lambda: DeltaWorldConfig.tiny(rope_axis_sizes=(12.5,)), "rope_axis_sizes"),
        (lambda: DeltaWorldConfig.tiny(rope_unrotated_size=-4, rope_axis_sizes=(20,)), "rope_unrotated_size"),
        (lambda: DeltaWorldConfig.tiny(num_samples_train=0), "num_samples_train"),
        (lambda: DeltaWorldConfig.tiny(num_samples_train=2.0), "num_samples_train"),
        (lambda: DeltaWorldConfig.tiny(num_samples_eval=-1), "num_samples_eval"),
        (lambda: DeltaWorldConfig.tiny(noise_std=0.0), "noise_std"),
        (lambda: DeltaWorldConfig.tiny(noise_std=float("nan")), "noise_std"),
        (lambda: DeltaWorldConfig.tiny(layer_norm_eps=-1e-5), "layer_norm_eps"),
        (lambda: DeltaWorldConfig.tiny(smooth_l1_beta=-0.1), "smooth_l1_beta"),
        (lambda: DeltaWorldConfig.tiny(hidden_act="swish_gelu"), "hidden_act"),
        (lambda: DeltaWorldConfig.tiny(candidate_chunk_size=0), "candidate_chunk_size"),
        (lambda: DeltaWorldConfig.tiny(use_best_of_many="yes"), "use_best_of_many"),
        (lambda: DeltaTokConfig.tiny(num_decoder_layers=-2), "num_decoder_layers"),
        (lambda: DeltaTokConfig.tiny(intermediate_size=0), "intermediate_size"),
        (lambda: DeltaTokConfig.tiny(layer_norm_eps=0), "layer_norm_eps"),
        (lambda: DeltaTokConfig.tiny(rope_rescale=0.5), "rope_rescale"),
        (lambda: DeltaTokConfig.tiny(rope_theta=-100.0), "rope_theta"),
        (lambda: DeltaTokConfig.tiny(image_std=(0.2, 0.0, 0.2)), "image_std"),
        (lambda: DeltaTokConfig.tiny(image_mean=(0.5, 0.5)), "image_mean"),
        (lambda: DeltaTokConfig.tiny(rollout_mode="teacher_forcing"), "rollout_mode"),
        (lambda: DeltaTokConfig(backbone_config={"hidden_size": -768}), "backbone_config.hidden_size"),
        (lambda: DeltaTokConfig(backbone_config={"hidden_size": 64, "num_attention_heads": 5}), "not divisible"),
        # 64 / 8 = 8 per head is fine; 72 / 4 = 18 cannot be split into (row, column) x (cos, sin) quarters.
        (lambda: DeltaTokConfig(backbone_config={"hidden_size": 72, "num_attention_heads": 4}), "divisible by 4"),
        (lambda: DeltaTokConfig(backbone_config={"patch_size": 0}), "backbone_config.patch_size"),
        (lambda: DeltaTokConfig(backbone_config={"num_register_tokens": -1}), "backbone_config.num_register_tokens"),
        (lambda: DeltaTokSegmentationHeadConfig(hidden_size=0), "hidden_size"),
        (lambda: DeltaTokDepthHeadConfig(num_bins=-3), "num_bins"),
        (lambda: DeltaTokDepthHeadConfig(min_depth=5.0, max_depth=1.0), "min_depth"),
    ],
)
def test_out_of_range_values_raise_naming_the_field(make, field):
    with pytest.raises(ValueError, match=field.replace("[", r"\[").replace(".", r"\.")):
        make()


def test_wrong_type_in_nested_backbone_config_is_a_type_error_naming_the_field():
    with pytest.raises(TypeError, match="backbone_config: Field 'hidden_size' expected int"):
        DeltaTokConfig(backbone_config={"hidden_size": "wide"})


def write_model_with_bad_config(directory: Path, path_in_config: list[str], value) -> Path:
    """A saved tiny DeltaWorld whose config.json then gets one bad value, and whose weights file is garbage."""
    DeltaWorldConfig.tiny().save_pretrained(directory)
    config_path = directory / "config.json"
    config = json.loads(config_path.read_text())
    node = config
    for key in path_in_config[:-1]:
        node = node[key]
    node[path_in_config[-1]] = value
    config_path.write_text(json.dumps(config))
    # Reading this file would fail with a safetensors error, so a ValueError naming the field proves the config was
    # rejected before any weight was read.
    (directory / "model.safetensors").write_bytes(b"\x00" * 64)
    return directory


@pytest.mark.parametrize(
    "path_in_config, value, field",
    [
        (["hidden_size"], -64, "hidden_size"),
        (["num_attention_heads"], 5, "num_attention_heads=5"),
        (["rope_axis_sizes"], [8], "head size"),
        (["num_samples_train"], 0, "num_samples_train"),
        (["num_samples_eval"], 0, "num_samples_eval"),
        (["tokenizer_config", "num_encoder_layers"], -1, "num_encoder_layers"),
        (["tokenizer_config", "backbone_config", "num_attention_heads"], 6, "not divisible"),
        (["tokenizer_config", "backbone_config", "intermediate_size"], -128, "backbone_config.intermediate_size"),
    ],
)
def test_bad_config_json_is_rejected_before_weights_are_read(tmp_path, path_in_config, value, field):
    directory = write_model_with_bad_config(tmp_path / "model", path_in_config, value)
    with pytest.raises(ValueError, match=field):
        DeltaWorldConfig.from_pretrained(directory)
    with pytest.raises(ValueError, match=field):
        DeltaWorldForForecasting.from_pretrained(directory)


def test_from_pretrained_overrides_are_checked_too(tmp_path):
    DeltaWorldConfig.tiny().save_pretrained(tmp_path)
    # transformers applies keyword overrides with setattr after the constructor; they are checked all the same.
    with pytest.raises(ValueError, match="num_samples_train"):
        DeltaWorldConfig.from_pretrained(tmp_path, num_samples_train=0)
    assert DeltaWorldConfig.from_pretrained(tmp_path, num_samples_train=8).num_samples_train == 8


def test_num_samples_train_zero_raises_instead_of_using_the_default(tiny_world):
    tokens, timestamps = torch.randn(1, 3, 64), [0.0, 0.1, 0.2]
    with pytest.raises(ValueError, match="num_samples_train"):
        tiny_world(delta_tokens=tokens, timestamps=timestamps, num_samples_train=0)
    tiny_world.config.num_samples_train = 0  # a config edited after construction is checked at the call
    with pytest.raises(ValueError, match="num_samples_train"):
        tiny_world(delta_tokens=tokens, timestamps=timestamps)
    output = tiny_world(delta_tokens=tokens, timestamps=timestamps, num_samples_train=3)
    assert output.candidate_losses.shape == (1, 2, 3)


@pytest.mark.parametrize(
    "make",
    [DeltaWorldConfig, DeltaWorldConfig.tiny, DeltaTokConfig, DeltaTokConfig.tiny, DeltaTokSegmentationHeadConfig,
     DeltaTokDepthHeadConfig],
    ids=["deltaworld_vitb", "deltaworld_tiny", "deltatok_vitb", "deltatok_tiny", "segmentation_head", "depth_head"],
)
def test_valid_presets_round_trip_through_config_json(tmp_path, make):
    config = make()
    config.save_pretrained(tmp_path)
    loaded = type(config).from_pretrained(tmp_path)
    assert loaded.to_diff_dict() == config.to_diff_dict()


def test_shipped_demo_model_config_still_loads():
    if not (DEMO_MODEL_DIR / "config.json").is_file():
        pytest.skip(f"demo model not found at {DEMO_MODEL_DIR}")
    config = DeltaWorldConfig.from_pretrained(DEMO_MODEL_DIR)
    # Saved before `candidate_chunk_size` existed: it gets the default.
    assert config.candidate_chunk_size == DeltaWorldConfig.tiny().candidate_chunk_size
    assert config.num_samples_train >= 1 and config.hidden_size % config.num_attention_heads == 0
