"""Convert the official DeltaTok task-head checkpoints (`SegHead` / `DepthHead` of `models/task_heads.py`).

The official heads are saved as plain state dicts (`pytorch_model.bin`, optionally wrapped in `{"state_dict": ...}`)
with the keys `bn.weight`, `bn.bias`, `bn.running_mean`, `bn.running_var`, `bn.num_batches_tracked`, `head.weight`
and `head.bias`. Our heads use the same module names, so conversion is a strict, shape-checked copy plus a config
whose sizes are read off the tensors.
"""

import os

import torch

from ..models.heads import (
    DeltaTokDepthHead,
    DeltaTokDepthHeadConfig,
    DeltaTokSegmentationHead,
    DeltaTokSegmentationHeadConfig,
)
from .official import load_state_dict_file

HEAD_KINDS = {
    "segmentation": (DeltaTokSegmentationHeadConfig, DeltaTokSegmentationHead),
    "depth": (DeltaTokDepthHeadConfig, DeltaTokDepthHead),
}
REQUIRED_KEYS = ("bn.weight", "bn.bias", "bn.running_mean", "bn.running_var", "head.weight", "head.bias")
# `num_batches_tracked` does not enter eval-mode maths; older saves may lack it.
OPTIONAL_KEYS = ("bn.num_batches_tracked",)


def load_official_head_state_dict(checkpoint_path_or_state_dict: str | os.PathLike | dict) -> dict:
    """
    Read an official head checkpoint (`.bin`/`.pt`/`.pth` via `torch.load(weights_only=True)`, or `.safetensors`) with
    [`load_state_dict_file`]: a pickle that needs more than tensors is refused with `UnsafeCheckpointError`.
    """
    if isinstance(checkpoint_path_or_state_dict, dict):
        state_dict = checkpoint_path_or_state_dict
    elif isinstance(checkpoint_path_or_state_dict, (str, os.PathLike)):
        # The one safe reader of the package: safetensors, or a pickle refused unless it holds only tensors.
        state_dict = load_state_dict_file(checkpoint_path_or_state_dict)
    else:
        raise TypeError(
            "`checkpoint_path_or_state_dict` must be a path or a state dict, got "
            f"{type(checkpoint_path_or_state_dict).__name__}."
        )
    # The official `load_sd` accepts Lightning-style `{"state_dict": ...}` wrappers too.
    if "state_dict" in state_dict and isinstance(state_dict["state_dict"], dict):
        state_dict = state_dict["state_dict"]
    not_tensors = [key for key, value in state_dict.items() if not isinstance(value, torch.Tensor)]
    if not_tensors:
        raise ValueError(f"Head checkpoint entries must be tensors; these are not: {not_tensors}.")
    return dict(state_dict)


def convert_official_head(
    checkpoint_path_or_state_dict: str | os.PathLike | dict,
    kind: str = "segmentation",
    output_dir: str | os.PathLike | None = None,
    **config_kwargs,
) -> DeltaTokSegmentationHead | DeltaTokDepthHead:
    """
    Build a [`DeltaTokSegmentationHead`] or [`DeltaTokDepthHead`] from official head weights.

    Args:
        checkpoint_path_or_state_dict (`str`, `os.PathLike` or `dict`):
            Path of an official head checkpoint (`pytorch_model.bin`-style, read with `torch.load(weights_only=True)`,
            or a `.safetensors` file) or the state dict itself.
        kind (`str`, *optional*, defaults to `"segmentation"`):
            `"segmentation"` or `"depth"`.
        output_dir (`str` or `os.PathLike`, *optional*):
            When given, the converted head is written there with `save_pretrained`.
        **config_kwargs:
            Extra config fields (e.g. `id2label`, `min_depth`, `max_depth`). `hidden_size`, `num_labels` /
            `num_classes` and `num_bins` are read from the tensor shapes; passing a different value raises.

    Returns:
        The converted head in eval mode.

    Raises:
        ValueError: unknown `kind`, missing or unexpected keys (all listed), or inconsistent tensor shapes.
    """
    if kind not in HEAD_KINDS:
        raise ValueError(f"`kind` must be one of {sorted(HEAD_KINDS)}, got {kind!r}.")
    config_class, model_class = HEAD_KINDS[kind]
    state_dict = load_official_head_state_dict(checkpoint_path_or_state_dict)

    missing = [key for key in REQUIRED_KEYS if key not in state_dict]
    unexpected = [key for key in state_dict if key not in REQUIRED_KEYS + OPTIONAL_KEYS]
    if missing or unexpected:
        raise ValueError(
            f"Official {kind} head checkpoint does not match the expected `bn.*`/`head.*` layout: "
            f"missing keys {missing}, unexpected keys {unexpected}."
        )

    head_weight = state_dict["head.weight"]
    if head_weight.ndim != 4 or tuple(head_weight.shape[2:]) != (1, 1):
        raise ValueError(
            f"`head.weight` must be a 1x1 convolution kernel of shape (out_channels, hidden_size, 1, 1), "
            f"got {tuple(head_weight.shape)}."
        )
    out_channels, hidden_size = head_weight.shape[:2]
    expected_shapes = {
        "bn.weight": (hidden_size,),
        "bn.bias": (hidden_size,),
        "bn.running_mean": (hidden_size,),
        "bn.running_var": (hidden_size,),
        "bn.num_batches_tracked": (),
        "head.bias": (out_channels,),
    }
    bad_shapes = {
        key: tuple(state_dict[key].shape)
        for key, shape in expected_shapes.items()
        if key in state_dict and tuple(state_dict[key].shape) != shape
    }
    if bad_shapes:
        raise ValueError(
            f"Inconsistent shapes for hidden_size={hidden_size}, out_channels={out_channels}: {bad_shapes} "
            f"(expected {({key: expected_shapes[key] for key in bad_shapes})})."
        )

    inferred = {"hidden_size": int(hidden_size)}
    if kind == "segmentation":
        if "num_classes" in config_kwargs:
            config_kwargs["num_labels"] = config_kwargs.pop("num_classes")
        if "id2label" not in config_kwargs:
            inferred["num_labels"] = int(out_channels)
        elif len(config_kwargs["id2label"]) != out_channels:
            raise ValueError(
                f"`id2label` names {len(config_kwargs['id2label'])} classes but `head.weight` has {out_channels}."
            )
    else:
        inferred["num_bins"] = int(out_channels)
    for name, value in inferred.items():
        if name in config_kwargs and config_kwargs[name] != value:
            raise ValueError(
                f"`{name}={config_kwargs[name]!r}` disagrees with the checkpoint, which has {name}={value}."
            )
    config = config_class(**{**config_kwargs, **inferred})

    model = model_class(config)
    model.load_state_dict(state_dict, strict=False)  # strictness was checked above, num_batches_tracked is optional
    model.eval()
    if output_dir is not None:
        model.save_pretrained(output_dir)
    return model


__all__ = ["convert_official_head", "load_official_head_state_dict"]
