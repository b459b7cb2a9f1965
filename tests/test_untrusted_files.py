"""Untrusted files: code-running pickles are refused unrun, broken files and wrong-shape weights fail with named keys."""

from __future__ import annotations

import os
import pickle

import pytest
import torch
from safetensors.torch import load_file, save_file

from deltatok_hf import DeltaWorldConfig, DeltaWorldForForecasting
from deltatok_hf.convert import convert_official_checkpoint, convert_official_head, load_state_dict_file
from deltatok_hf.convert.official import UnsafeCheckpointError


class CodeRunningPayload:
    """Unpickling this object calls `os.system`, which would create the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def marker(tmp_path):
    return tmp_path / "payload_ran"


def write_torch_save_payload(path, marker):
    # The modern zip format of torch.save, with one ordinary tensor next to the payload.
    torch.save({"weight": torch.zeros(2), "payload": CodeRunningPayload(marker)}, path)
    return path


def write_raw_pickle_payload(path, marker):
    # A plain pickle (what an attacker would hand-craft), protocol 2 as old torch checkpoints.
    with open(path, "wb") as handle:
        pickle.dump({"weight": CodeRunningPayload(marker)}, handle, protocol=2)
    return path


@pytest.mark.parametrize("write", [write_torch_save_payload, write_raw_pickle_payload], ids=["torch_save", "raw_pickle"])
def test_code_running_pickle_is_refused_and_never_runs(tmp_path, marker, write):
    path = write(tmp_path / "pytorch_model.bin", marker)
    with pytest.raises(UnsafeCheckpointError, match=r"Refused to load .*pytorch_model\.bin.*arbitrary code") as info:
        load_state_dict_file(path)
    assert isinstance(info.value, ValueError)
    # The blocked global is named, and torch's advice to retry with weights_only=False is not passed on.
    assert "system" in str(info.value) and "weights_only=False" not in str(info.value)
    assert not marker.exists()


def test_converters_refuse_code_running_pickles(tmp_path, marker):
    path = write_torch_save_payload(tmp_path / "pytorch_model.bin", marker)
    with pytest.raises(UnsafeCheckpointError):
        convert_official_checkpoint(deltaworld=path, preset="tiny")
    with pytest.raises(UnsafeCheckpointError):
        convert_official_head(path, kind="segmentation")
    assert not marker.exists()


def test_pickle_of_plain_tensors_still_loads(tmp_path):
    state = {"predictor.head.bias": torch.arange(4.0)}
    torch.save(state, tmp_path / "weights.bin")
    torch.save({"state_dict": state}, tmp_path / "lightning.ckpt")
    for name in ("weights.bin", "lightning.ckpt"):
        loaded = load_state_dict_file(tmp_path / name)
        assert list(loaded) == ["predictor.head.bias"] and torch.equal(loaded["predictor.head.bias"], torch.arange(4.0))


def test_unreadable_or_non_tensor_files_raise_value_errors(tmp_path):
    (tmp_path / "broken.safetensors").write_bytes(b"not a safetensors file" * 4)
    with pytest.raises(ValueError, match="not a valid safetensors file"):
        load_state_dict_file(tmp_path / "broken.safetensors")
    (tmp_path / "truncated.bin").write_bytes(b"PK\x03\x04 truncated zip")
    with pytest.raises(ValueError, match="truncated.bin"):
        load_state_dict_file(tmp_path / "truncated.bin")
    torch.save({"weight": torch.zeros(1), "step": 3}, tmp_path / "mixed.bin")
    with pytest.raises(ValueError, match=r"not tensors: \['step'\]"):
        load_state_dict_file(tmp_path / "mixed.bin")
    torch.save([torch.zeros(1)], tmp_path / "list.bin")
    with pytest.raises(ValueError, match="holds a list"):
        load_state_dict_file(tmp_path / "list.bin")
    with pytest.raises(ValueError, match="not found"):
        load_state_dict_file(tmp_path / "absent.bin")


@pytest.fixture
def saved_tiny_world(tmp_path):
    torch.manual_seed(0)
    model = DeltaWorldForForecasting(DeltaWorldConfig.tiny())
    model.save_pretrained(tmp_path / "model")
    return tmp_path / "model"


def test_from_pretrained_names_every_wrong_shape_key(saved_tiny_world):
    weights_path = saved_tiny_world / "model.safetensors"
    weights = load_file(str(weights_path))
    weights["predictor.head.weight"] = torch.zeros(64, 32)
    weights["predictor.norm.weight"] = torch.zeros(3)
    save_file(weights, str(weights_path), metadata={"format": "pt"})
    with pytest.raises(ValueError) as info:
        DeltaWorldForForecasting.from_pretrained(saved_tiny_world)
    message = str(info.value)
    assert "predictor.head.weight: checkpoint (64, 32) vs model (64, 64)" in message
    assert "predictor.norm.weight: checkpoint (3,) vs model (64,)" in message
    # Asked for explicitly, the mismatched tensors are re-initialised and reported instead.
    model, loading_info = DeltaWorldForForecasting.from_pretrained(
        saved_tiny_world, ignore_mismatched_sizes=True, output_loading_info=True
    )
    assert {key for key, _, _ in loading_info["mismatched_keys"]} == {"predictor.head.weight", "predictor.norm.weight"}
    assert model.predictor.head.weight.shape == (64, 64)


def test_converter_strict_mode_names_wrong_shape_and_unknown_keys():
    torch.manual_seed(0)
    official = {
        key: value for key, value in DeltaWorldForForecasting(DeltaWorldConfig.tiny()).state_dict().items()
        if key.startswith("predictor.")
    }
    official["predictor.head.weight"] = torch.zeros(64, 32)
    official["predictor.extra.weight"] = torch.zeros(2)
    with pytest.raises(ValueError) as info:
        convert_official_checkpoint(deltaworld=official, preset="tiny", strict=True)
    lines = str(info.value).splitlines()
    assert "  unmatched: predictor.extra.weight" in lines
    assert "  shape: predictor.head.weight: checkpoint (64, 32) vs model (64, 64)" in lines
    # Non-strict conversion skips them and says so in the report.
    _, report = convert_official_checkpoint(deltaworld=official, preset="tiny", strict=False)
    assert report.unmatched == ["predictor.extra.weight"]
    assert report.shape_mismatches == ["predictor.head.weight: checkpoint (64, 32) vs model (64, 64)"]


def test_tokenizer_from_pretrained_names_wrong_shape_keys(tmp_path):
    from deltatok_hf import DeltaTokConfig, DeltaTokModel

    torch.manual_seed(0)
    DeltaTokModel(DeltaTokConfig.tiny()).save_pretrained(tmp_path)
    weights = load_file(str(tmp_path / "model.safetensors"))
    weights["z_embed.weight"] = torch.zeros(1, 32)
    save_file(weights, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ValueError, match=r"z_embed\.weight: checkpoint \(1, 32\) vs model \(1, 64\)"):
        DeltaTokModel.from_pretrained(tmp_path)


def test_dino_world_from_pretrained_names_wrong_shape_keys(tmp_path):
    from deltatok_hf.models.dinoworld import DinoWorldConfig, DinoWorldForForecasting

    torch.manual_seed(0)
    DinoWorldForForecasting(DinoWorldConfig.tiny()).save_pretrained(tmp_path)
    weights = load_file(str(tmp_path / "model.safetensors"))
    name = next(key for key in weights if key.startswith("predictor.") and weights[key].ndim == 2)
    weights[name] = torch.zeros(3, 5)
    save_file(weights, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ValueError, match=rf"{name.replace('.', chr(92) + '.')}: checkpoint \(3, 5\)"):
        DinoWorldForForecasting.from_pretrained(tmp_path)
