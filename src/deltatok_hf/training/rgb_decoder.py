"""`examples/train_rgb_decoder.py`: fit a [`DeltaTokRGBDecoder`] (features -> pixels) on frozen backbone features.

Every step runs the frozen backbone of a DeltaTok (or of a DeltaWorld's tokenizer) on a batch of frames, decodes the
features with the decoder, and compares the result with the frames on a 0..1 RGB scale (L1 by default, or MSE). Only
the decoder trains; the backbone stays in eval mode (no RoPE augmentation: the features are those seen at inference).
The data, loop, checkpoints (`checkpoint-{step}`, `--resume_from_checkpoint latest`) and final `save_pretrained` are
those of `train-deltatok`.

Note: the official code ships the RGB head pretrained (`rgb-head-imagenet`, adapted from RAE) and has no recipe to
train it, so the defaults below are plain settings of ours, not the official ones; the pixel loss alone (no
perceptual or adversarial term, which RAE-style decoders add) gives blurrier images than the released head.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F

from ..models import DeltaTokConfig, DeltaTokModel, DeltaTokRGBDecoder, DeltaTokRGBDecoderConfig, DeltaWorldForForecasting
from .arguments import TrainingArguments, _help
from .cards import build_card_data, command_line, hub_repo_id, render_inline_card
from .data import build_clip_dataset
from .loop import end_run, start_run, train
from .optim import apply_training_options
from .recipes import TrainingRecipe

logger = logging.getLogger(__name__)

# Not an official recipe (there is none, see the module docstring); both presets use it. Every frame of a clip is a
# training image; 2 frames a clip is the fewest the synthetic clips allow.
RGB_DECODER_RECIPE = TrainingRecipe(
    learning_rate=1e-4, weight_decay=0.0, warmup_steps=1000, max_grad_norm=1.0, num_frames=2, effective_batch_size=256
)
PIXEL_LOSSES = ("l1", "mse")
# Named parts for `--freeze`; anything else is taken as a parameter-name prefix.
RGB_DECODER_PARTS = {
    "input": ("feature_projection.", "cls_token"),
    "blocks": ("layers.",),
    "output": ("norm.", "pixel_projection."),
}


@dataclass
class RGBDecoderTrainingArguments(TrainingArguments):
    """`examples/train_rgb_decoder.py` (and `deltatok-hf train-rgb-decoder` once wired)."""

    model_type: ClassVar[str] = "rgb_decoder"

    feature_model: str = field(
        default="tiny",
        **_help(
            "Whose frozen backbone makes the features: a DeltaTok or DeltaWorld folder / Hub id, or `tiny` (a random "
            "tiny DeltaTok backbone: proves the mechanics only)."
        ),
    )
    pixel_loss: Literal["l1", "mse"] = field(default="l1", **_help("Loss on 0..1 RGB: mean absolute or squared error."))

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.pixel_loss not in PIXEL_LOSSES:
            raise ValueError(f"pixel_loss must be one of {PIXEL_LOSSES}, got {self.pixel_loss!r}.")

    @property
    def recipe(self) -> TrainingRecipe:
        return RGB_DECODER_RECIPE


def pixel_reconstruction_loss(prediction: torch.Tensor, target: torch.Tensor, kind: str = "l1") -> torch.Tensor:
    """Mean L1 (`"l1"`) or squared (`"mse"`) error between two RGB images on a 0..1 scale, computed in float32."""
    prediction, target = prediction.float(), target.float()
    if kind == "l1":
        return F.l1_loss(prediction, target)
    if kind == "mse":
        return F.mse_loss(prediction, target)
    raise ValueError(f"Unknown pixel loss {kind!r}; expected one of {PIXEL_LOSSES}.")


def build_feature_model(arguments: RGBDecoderTrainingArguments) -> DeltaTokModel:
    """The DeltaTok whose frozen backbone gives the features (a DeltaWorld's tokenizer), in eval mode, no gradients."""
    if arguments.feature_model == "tiny":
        logger.warning("feature_model=tiny: a RANDOM tiny backbone; the decoder learns mechanics, not real images.")
        model = DeltaTokModel(DeltaTokConfig.tiny())
    else:
        from transformers import AutoModel

        model = AutoModel.from_pretrained(arguments.feature_model)
        if isinstance(model, DeltaWorldForForecasting):
            model = model.tokenizer
        if not isinstance(model, DeltaTokModel):
            raise ValueError(
                f"feature_model {arguments.feature_model!r} is a {type(model).__name__}; expected a DeltaTok or a "
                "DeltaWorld (whose backbone and preprocessing make the features)."
            )
    return model.requires_grad_(False).eval()


def build_rgb_decoder(arguments: RGBDecoderTrainingArguments, feature_model: DeltaTokModel) -> DeltaTokRGBDecoder:
    """
    A new decoder sized by `model_config` (`tiny`, `vitb` = the released head's sizes, or a config path) or
    `init_from`'s, reading `feature_model`'s features and holding its backbone's final-LayerNorm affine. A new decoder's
    trained grid (`image_size`) is the training crop, `frame_size`, unless a config path sets it.
    """
    feature_size = feature_model.config.hidden_size
    if arguments.init_from is not None:
        decoder = DeltaTokRGBDecoder.from_pretrained(arguments.init_from)
    else:
        sizes = {"feature_size": feature_size, "image_size": arguments.frame_size}
        if arguments.model_config == "tiny":
            config = DeltaTokRGBDecoderConfig.tiny(**sizes)
        elif arguments.model_config == "vitb":
            config = DeltaTokRGBDecoderConfig(**sizes)
        else:
            config = DeltaTokRGBDecoderConfig.from_pretrained(arguments.model_config)
        decoder = DeltaTokRGBDecoder(config)
    if decoder.config.feature_size != feature_size:
        raise ValueError(
            f"The decoder reads {decoder.config.feature_size}-d features but feature_model gives {feature_size}-d ones."
        )
    backbone_norm = feature_model.backbone.norm
    if not decoder.has_feature_norm:
        decoder.copy_feature_norm_from(feature_model)
    elif not (
        torch.equal(decoder.feature_norm_weight, backbone_norm.weight.to(decoder.feature_norm_weight))
        and torch.equal(decoder.feature_norm_bias, backbone_norm.bias.to(decoder.feature_norm_bias))
    ):
        raise ValueError(
            f"init_from {arguments.init_from!r} undoes another backbone's final LayerNorm than feature_model's; "
            "fine-tune it on the features of the backbone it was trained for."
        )
    apply_training_options(decoder, arguments.freeze, arguments.gradient_checkpointing, RGB_DECODER_PARTS)
    return decoder


class RGBDecoderLoss:
    """`compute_loss(decoder, batch)` of the loop: frozen features of `batch["frames"]`, decoded and compared."""

    def __init__(self, feature_model: DeltaTokModel, pixel_loss: str = "l1") -> None:
        self.feature_model = feature_model
        self.pixel_loss = pixel_loss

    def __call__(self, decoder: torch.nn.Module, batch: dict) -> torch.Tensor:
        frames = batch["frames"]  # (batch_size, num_frames, 3, height, width), RGB 0..255
        grid_size = self.feature_model.grid_size(*frames.shape[-2:])
        features = self.feature_model.extract_features(frames)  # (batch_size, num_frames, num_patches, feature_size)
        pixels = decoder(features.flatten(0, 1), grid_size=grid_size).pixel_values  # (batch * frames, 3, H, W), 0..1
        target = frames.flatten(0, 1).float() / 255.0  # (batch_size * num_frames, 3, height, width)
        return pixel_reconstruction_loss(pixels, target, self.pixel_loss)


def rgb_decoder_model_card(arguments: RGBDecoderTrainingArguments, summary: dict, decoder: DeltaTokRGBDecoder):
    """The `README.md` of a trained decoder. (Written here: the packaged templates cover DeltaTok and DeltaWorld only.)"""
    dataset = hub_repo_id(arguments.train_data)
    data = build_card_data(
        "rgb_decoder",
        tags=["deltatok", "rgb-decoder", "feature-decoder"],
        base_model=hub_repo_id(arguments.init_from or arguments.feature_model),
        datasets=[dataset] if dataset else None,
    )
    config = decoder.config
    random_note = (
        "\n**The features came from a random tiny backbone: this decoder proves the training mechanics only.**\n"
        if arguments.feature_model == "tiny"
        else ""
    )
    body = (
        "A `DeltaTokRGBDecoder` (deltatok-hf) that turns frozen backbone patch features into RGB frames, trained on "
        f"the features of `{arguments.feature_model}` with an {arguments.pixel_loss.upper()} loss on 0..1 RGB.\n"
        f"{random_note}\n"
        "| setting | value |\n|---|---|\n"
        f"| blocks / hidden / heads | {config.num_hidden_layers} / {config.hidden_size} / {config.num_attention_heads} |\n"
        f"| trained grid | {config.trained_grid_size} x {config.trained_grid_size} patches ({config.image_size} px) |\n"
        f"| train data | `{arguments.train_data}` |\n"
        f"| optimizer steps | {summary['global_step']} |\n"
        f"| effective batch | {summary['effective_batch_size']} |\n"
        f"| final loss | {summary['final_loss']} |\n\n"
        f"Command: `{command_line()}`\n"
    )
    return render_inline_card(data, arguments.hub_model_id or "DeltaTok RGB decoder", body)


def train_rgb_decoder(arguments: RGBDecoderTrainingArguments) -> dict:
    """Train, save the decoder, `train_summary.json` and a model card to `arguments.output_dir`; returns the summary."""
    accelerator = start_run(arguments)
    feature_model = build_feature_model(arguments).to(accelerator.device)
    decoder = build_rgb_decoder(arguments, feature_model)
    compute_loss = RGBDecoderLoss(feature_model, arguments.pixel_loss)
    summary = train(arguments, accelerator, decoder, build_clip_dataset(arguments), compute_loss)
    summary["pixel_loss"] = arguments.pixel_loss
    return end_run(arguments, accelerator, summary, lambda: rgb_decoder_model_card(arguments, summary, decoder))


__all__ = [
    "PIXEL_LOSSES",
    "RGB_DECODER_PARTS",
    "RGB_DECODER_RECIPE",
    "RGBDecoderLoss",
    "RGBDecoderTrainingArguments",
    "build_feature_model",
    "build_rgb_decoder",
    "pixel_reconstruction_loss",
    "rgb_decoder_model_card",
    "train_rgb_decoder",
]
