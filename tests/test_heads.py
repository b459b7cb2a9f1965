"""Task heads: official-maths parity of converted weights, save/load, AutoModel, input checks."""

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from transformers import AutoConfig, AutoModel

from deltatok_hf.convert.heads import convert_official_head
from deltatok_hf.models.heads import (
    DeltaTokDepthHead,
    DeltaTokDepthHeadConfig,
    DeltaTokSegmentationHead,
    DeltaTokSegmentationHeadConfig,
)


HIDDEN_SIZE = 16
GRID_SIZE = (3, 4)
LABEL_SIZE = (11, 17)


def official_style_state_dict(hidden_size: int, out_channels: int, seed: int = 0) -> dict:
    """Random weights with the key layout of the official `SegHead` / `DepthHead` state dicts."""
    generator = torch.Generator().manual_seed(seed)
    return {
        "bn.weight": torch.rand(hidden_size, generator=generator) + 0.5,
        "bn.bias": torch.randn(hidden_size, generator=generator),
        "bn.running_mean": torch.randn(hidden_size, generator=generator),
        "bn.running_var": torch.rand(hidden_size, generator=generator) + 0.5,
        "bn.num_batches_tracked": torch.tensor(123),
        "head.weight": torch.randn(out_channels, hidden_size, 1, 1, generator=generator) * 0.3,
        "head.bias": torch.randn(out_channels, generator=generator) * 0.3,
    }


def reference_logits(state_dict: dict, feature_map: torch.Tensor) -> torch.Tensor:
    """Eval-mode BatchNorm2d then a 1x1 convolution, written as plain torch ops."""
    normalised = (feature_map - state_dict["bn.running_mean"][:, None, None]) / torch.sqrt(
        state_dict["bn.running_var"][:, None, None] + 1e-5
    )
    normalised = normalised * state_dict["bn.weight"][:, None, None] + state_dict["bn.bias"][:, None, None]
    weight = state_dict["head.weight"][:, :, 0, 0]
    return torch.einsum("kc,bchw->bkhw", weight, normalised) + state_dict["head.bias"][:, None, None]


def patch_features(batch_size: int = 2, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch_size, GRID_SIZE[0] * GRID_SIZE[1], HIDDEN_SIZE, generator=generator)


def to_grid(features: torch.Tensor) -> torch.Tensor:
    # (batch, num_patches, hidden) raster order -> (batch, hidden, h, w)
    return features.transpose(1, 2).reshape(features.shape[0], HIDDEN_SIZE, *GRID_SIZE)


def test_converted_segmentation_head_matches_official_maths_with_logits_upsampled():
    state_dict = official_style_state_dict(HIDDEN_SIZE, 5)
    head = convert_official_head(state_dict, kind="segmentation")
    assert head.config.hidden_size == HIDDEN_SIZE and head.config.num_classes == 5 and not head.training
    features = patch_features()
    expected = F.interpolate(reference_logits(state_dict, to_grid(features)), LABEL_SIZE, mode="bilinear")
    with torch.no_grad():
        logits = head(features, grid_size=GRID_SIZE, output_size=LABEL_SIZE).logits
        grid_logits = head(to_grid(features)).logits
    assert logits.shape == (2, 5, *LABEL_SIZE)
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grid_logits, reference_logits(state_dict, to_grid(features)), atol=1e-5, rtol=1e-5)


def test_converted_depth_head_takes_expectation_on_patch_grid_then_upsamples():
    min_depth, max_depth, num_bins = 1e-3, 80.0, 32
    state_dict = official_style_state_dict(HIDDEN_SIZE, num_bins, seed=3)
    head = convert_official_head(state_dict, kind="depth")
    assert head.config.num_bins == num_bins
    features = patch_features()
    weights = torch.relu(reference_logits(state_dict, to_grid(features))) + 0.1
    weights = weights / weights.sum(dim=1, keepdim=True)
    bins = torch.linspace(min_depth, max_depth, num_bins)
    depth_grid = (weights * bins[None, :, None, None]).sum(dim=1, keepdim=True)
    expected = F.interpolate(depth_grid, LABEL_SIZE, mode="bilinear", align_corners=False)
    with torch.no_grad():
        depth = head(features, grid_size=GRID_SIZE, output_size=LABEL_SIZE).predicted_depth
    assert depth.shape == (2, 1, *LABEL_SIZE)
    torch.testing.assert_close(depth, expected, atol=1e-4, rtol=1e-5)
    assert depth.min() >= min_depth and depth.max() <= max_depth


def test_convert_reads_bin_and_safetensors_files_and_saves(tmp_path):
    state_dict = official_style_state_dict(HIDDEN_SIZE, 7)
    torch.save(state_dict, tmp_path / "pytorch_model.bin")
    save_file(state_dict, str(tmp_path / "head.safetensors"))
    from_bin = convert_official_head(tmp_path / "pytorch_model.bin", output_dir=tmp_path / "converted")
    from_safetensors = convert_official_head(str(tmp_path / "head.safetensors"))
    for key, value in state_dict.items():
        torch.testing.assert_close(from_bin.state_dict()[key], value)
        torch.testing.assert_close(from_safetensors.state_dict()[key], value)
    reloaded = DeltaTokSegmentationHead.from_pretrained(tmp_path / "converted")
    assert reloaded.state_dict()["bn.num_batches_tracked"].item() == 123
    for key, value in state_dict.items():
        torch.testing.assert_close(reloaded.state_dict()[key], value)


def test_convert_accepts_lightning_wrapper_and_config_kwargs():
    state_dict = official_style_state_dict(HIDDEN_SIZE, 3)
    id2label = {0: "road", 1: "car", 2: "sky"}
    head = convert_official_head({"state_dict": state_dict}, kind="segmentation", id2label=id2label)
    assert head.config.id2label == id2label
    depth = convert_official_head(official_style_state_dict(HIDDEN_SIZE, 8), kind="depth", max_depth=10.0)
    assert depth.config.max_depth == 10.0


def test_convert_rejects_unmatched_keys_and_bad_shapes():
    state_dict = official_style_state_dict(HIDDEN_SIZE, 3)
    with pytest.raises(ValueError, match=r"unexpected keys \['extra.weight'\]"):
        convert_official_head({**state_dict, "extra.weight": torch.zeros(1)})
    incomplete = dict(state_dict)
    del incomplete["bn.running_var"]
    with pytest.raises(ValueError, match=r"missing keys \['bn.running_var'\]"):
        convert_official_head(incomplete)
    with pytest.raises(ValueError, match="bn.bias"):
        convert_official_head({**state_dict, "bn.bias": torch.zeros(HIDDEN_SIZE + 1)})
    with pytest.raises(ValueError, match="hidden_size"):
        convert_official_head(state_dict, hidden_size=HIDDEN_SIZE * 2)
    with pytest.raises(ValueError, match="kind"):
        convert_official_head(state_dict, kind="normals")


@pytest.mark.parametrize(
    "config",
    [DeltaTokSegmentationHeadConfig(hidden_size=8, num_classes=4), DeltaTokDepthHeadConfig(hidden_size=8, num_bins=6)],
)
def test_save_pretrained_round_trip_through_auto_classes(tmp_path, config):
    head = AutoModel.from_config(config).eval()
    with torch.no_grad():
        head.bn.running_mean.normal_()
        head.bn.running_var.uniform_(0.5, 2.0)
    head.save_pretrained(tmp_path)
    assert type(AutoConfig.from_pretrained(tmp_path)) is type(config)
    reloaded = AutoModel.from_pretrained(tmp_path).eval()
    assert type(reloaded) is type(head)
    features = torch.randn(2, 6, 8)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(features, grid_size=(2, 3))[0], head(features, grid_size=(2, 3))[0])


def test_bad_inputs_raise_value_errors():
    head = DeltaTokSegmentationHead(DeltaTokSegmentationHeadConfig(hidden_size=8, num_classes=3))
    with pytest.raises(ValueError, match="grid_size"):
        head(torch.randn(1, 6, 8))
    with pytest.raises(ValueError, match="num_patches=6"):
        head(torch.randn(1, 6, 8), grid_size=(2, 2))
    with pytest.raises(ValueError, match="hidden size 5"):
        head(torch.randn(1, 6, 5), grid_size=(2, 3))
    with pytest.raises(ValueError, match="channels"):
        head(torch.randn(1, 5, 2, 3))
    with pytest.raises(ValueError, match="shape"):
        head(torch.randn(6, 8))
    with pytest.raises(ValueError, match="floating-point"):
        head(torch.ones(1, 6, 8, dtype=torch.long), grid_size=(2, 3))
    with pytest.raises(ValueError, match="output_size"):
        head(torch.randn(1, 6, 8), grid_size=(2, 3), output_size=(0, 4))
    with pytest.raises(TypeError, match="ndarray"):
        head(torch.randn(1, 6, 8).numpy(), grid_size=(2, 3))


def test_bad_config_values_raise_value_errors():
    with pytest.raises(ValueError, match="hidden_size"):
        DeltaTokSegmentationHeadConfig(hidden_size=0)
    with pytest.raises(ValueError, match="num_labels"):
        DeltaTokSegmentationHeadConfig(num_classes=0)
    with pytest.raises(ValueError, match="min_depth"):
        DeltaTokDepthHeadConfig(min_depth=10.0, max_depth=5.0)
    with pytest.raises(ValueError, match="num_bins"):
        DeltaTokDepthHeadConfig(num_bins=-1)


def test_wrong_shape_weights_name_every_key(tmp_path):
    from deltatok_hf.models.rgb_decoder import DeltaTokRGBDecoder, DeltaTokRGBDecoderConfig

    DeltaTokSegmentationHead(DeltaTokSegmentationHeadConfig(hidden_size=8, num_classes=4)).save_pretrained(tmp_path / "seg")
    config = DeltaTokSegmentationHeadConfig.from_pretrained(tmp_path / "seg")
    config.num_labels = 5  # the checkpoint's classifier has 4 rows
    named = r"(?s)do not fit.*head\.bias: checkpoint \(4,\) vs model \(5,\).*head\.weight: checkpoint \(4, 8, 1, 1\) vs model"
    with pytest.raises(ValueError, match=named) as error:
        DeltaTokSegmentationHead.from_pretrained(tmp_path / "seg", config=config)
    assert "ignore_mismatched_sizes=True" in str(error.value)
    head, info = DeltaTokSegmentationHead.from_pretrained(
        tmp_path / "seg", config=config, ignore_mismatched_sizes=True, output_loading_info=True
    )
    assert head.config.num_labels == 5 and info["mismatched_keys"]
    # The RGB decoder's loading says the same.
    DeltaTokRGBDecoder(DeltaTokRGBDecoderConfig.tiny(feature_size=16, image_size=32)).save_pretrained(tmp_path / "rgb")
    with pytest.raises(ValueError, match="do not fit"):
        DeltaTokRGBDecoder.from_pretrained(tmp_path / "rgb", config=DeltaTokRGBDecoderConfig.tiny(feature_size=24, image_size=32))
