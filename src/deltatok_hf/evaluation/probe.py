"""A segmentation or depth linear probe (BatchNorm + 1x1 conv) on frozen backbone features, with 🤗 Accelerate.

Only the labelled frames are used (the last frame of each official window, read with the same readers as the
benchmark): frames resized to `size` on the short side, split into square crops, and the labels into the matching
halves, so the head sees exactly what the evaluation feeds it. The backbone (from a DeltaWorld or a DeltaTok
checkpoint) is frozen; only the head trains.

Losses: cross-entropy with `ignore_index=255` for segmentation; for depth the scale-invariant log loss (SILog,
Eigen et al. 2014, `sqrt(mean(d^2) - lambda * mean(d)^2)` with `d = log(prediction) - log(target)`, lambda 0.85, as
DINOv2's depth probes) or `l1`, over pixels with valid depth (> 0). Optimizer AdamW. The finished head is written
with `save_pretrained` and loads with [`deltatok_hf.evaluation.load_task_head`].

Note: the official repository ships trained heads but not the code that trained them; this is our recipe.
"""

import json
import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import set_seed
from tqdm.auto import tqdm
from transformers import PretrainedConfig

from ..data.benchmarks import (
    SyntheticLabelledFrames,
    build_labelled_dataset,
    collate_windows,
)
from ..data.video_processor import align_to_labels, split_into_square_crops
from ..metrics.functional import IGNORE_INDEX
from ..models.deltatok import DeltaTokModel
from ..models.deltaworld import DeltaWorldForForecasting
from ..models.heads import (
    DeltaTokDepthHead,
    DeltaTokDepthHeadConfig,
    DeltaTokSegmentationHead,
    DeltaTokSegmentationHeadConfig,
)
from .configuration import LinearProbeConfig


logger = get_logger(__name__)

SILOG_LAMBDA = 0.85


def load_backbone_model(name_or_path: str) -> DeltaTokModel:
    """The frozen feature extractor: the tokenizer of a DeltaWorld checkpoint, or a DeltaTok checkpoint itself."""
    config_dict, _ = PretrainedConfig.get_config_dict(name_or_path)
    model_type = config_dict.get("model_type")
    if model_type == "deltaworld":
        return DeltaWorldForForecasting.from_pretrained(name_or_path).tokenizer
    if model_type == "deltatok":
        return DeltaTokModel.from_pretrained(name_or_path)
    raise ValueError(f"Model {name_or_path} has model_type {model_type!r}; expected 'deltaworld' or 'deltatok'.")


def build_probe_dataset(config: LinearProbeConfig) -> torch.utils.data.Dataset:
    """One-frame windows: exactly the labelled frames of the official windows (or synthetic labelled frames)."""
    if config.dataset == "synthetic":
        return SyntheticLabelledFrames(config.num_synthetic_images, size=config.size, task=config.task, seed=config.seed)
    # KITTI's frame >= 19 rule is dropped: it only exists to fit 7-frame windows.
    extra = {"min_label_frame_index": 0} if config.dataset == "kitti" else {}
    return build_labelled_dataset(
        config.dataset,
        config.data_root,
        num_frames=1,
        frame_size=config.size,
        split=config.split,
        split_file=config.split_file,
        **extra,
    )


def build_probe_head(task: str, hidden_size: int, num_labels: int | None, config: LinearProbeConfig):
    """A fresh head; the depth range is the head config's default unless `config` sets it."""
    if task == "segmentation":
        return DeltaTokSegmentationHead(DeltaTokSegmentationHeadConfig(hidden_size=hidden_size, num_labels=num_labels))
    depth_range = {k: v for k, v in (("min_depth", config.min_depth), ("max_depth", config.max_depth)) if v is not None}
    return DeltaTokDepthHead(DeltaTokDepthHeadConfig(hidden_size=hidden_size, **depth_range))


def silog_loss(prediction: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Scale-invariant log loss over the valid pixels (see the module docstring)."""
    difference = torch.log(prediction[valid].clamp_min(1e-6)) - torch.log(target[valid])
    return torch.sqrt((difference.square().mean() - SILOG_LAMBDA * difference.mean().square()).clamp_min(1e-12))


def probe_loss(head, features, grid_size, labels, layout, task: str, depth_loss: str) -> torch.Tensor:
    """Loss of the head on `(crops * batch, N, D)` features against label halves `(crops * batch, H, W)`."""
    label_size = tuple(labels.shape[-2:])
    if task == "segmentation":
        logits = align_to_labels(head(features, grid_size=grid_size).logits, label_size, layout)
        return F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX)
    depth = align_to_labels(head(features, grid_size=grid_size).predicted_depth, label_size, layout)[:, 0]
    valid = labels > 0
    if not valid.any():
        return depth.sum() * 0.0  # keeps the graph (and DDP) intact when a batch has no valid depth
    if depth_loss == "silog":
        return silog_loss(depth, labels, valid)
    return (depth[valid] - labels[valid]).abs().mean()


def train_linear_probe(config: LinearProbeConfig, accelerator: Accelerator | None = None) -> dict:
    """Train the probe of `config`, save it (and `training_summary.json`) to `config.output_dir`; return the summary
    with the loss of every step."""
    if not isinstance(config, LinearProbeConfig):
        raise TypeError(f"`config` must be a LinearProbeConfig, got {type(config).__name__}.")
    accelerator = accelerator or Accelerator()
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    set_seed(config.seed)

    # 1. Frozen backbone, dataset, head.
    backbone_model = load_backbone_model(config.model).eval().requires_grad_(False).to(accelerator.device)
    if config.size % backbone_model.patch_size:
        raise ValueError(
            f"`size` must be a multiple of the model's patch size {backbone_model.patch_size}, got {config.size}."
        )
    dataset = build_probe_dataset(config)
    if len(dataset) == 0:
        raise ValueError(f"No labelled frames found for dataset {config.dataset!r} under {config.data_root}.")
    task = dataset.task
    hidden_size = backbone_model.config.backbone_config.hidden_size
    head = build_probe_head(task, hidden_size, getattr(dataset, "num_labels", None), config)
    optimizer = torch.optim.AdamW(head.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    dataloader = torch.utils.data.DataLoader(
        dataset,
        batch_size=config.train_batch_size,
        shuffle=True,
        drop_last=len(dataset) >= config.train_batch_size,
        collate_fn=collate_windows,
        num_workers=config.num_workers,
    )
    head, optimizer, dataloader = accelerator.prepare(head, optimizer, dataloader)

    # 2. Training loop over as many epochs as `max_train_steps` needs.
    logger.info(
        f"Training a {task} probe on {len(dataset)} labelled frames of {config.dataset} for {config.max_train_steps} "
        "steps"
    )
    losses = []
    progress = tqdm(range(config.max_train_steps), disable=not accelerator.is_local_main_process, desc="steps")
    head.train()
    while len(losses) < config.max_train_steps:
        for batch in dataloader:
            frames, labels, layout = split_into_square_crops(batch["frames"][:, -1:], batch["labels"][:, -1:])
            grid_size = backbone_model.grid_size(*frames.shape[-2:])
            with torch.no_grad():
                features = backbone_model.extract_features(frames)[:, 0].float()  # (crops * batch, N, D)
            loss = probe_loss(head, features, grid_size, labels[:, 0], layout, task, config.depth_loss)
            accelerator.backward(loss)
            optimizer.step()
            optimizer.zero_grad()
            losses.append(accelerator.reduce(loss.detach(), reduction="mean").item())
            progress.update(1)
            progress.set_postfix(loss=f"{losses[-1]:.4f}")
            if len(losses) >= config.max_train_steps:
                break

    # 3. Save.
    accelerator.wait_for_everyone()
    summary = {
        "task": task,
        "dataset": config.dataset,
        "steps": len(losses),
        "first_loss": losses[0],
        "final_loss": losses[-1],
    }
    if accelerator.is_main_process:
        output_dir = Path(config.output_dir)
        head_model = accelerator.unwrap_model(head).eval()
        head_model.save_pretrained(output_dir)
        (output_dir / "training_summary.json").write_text(json.dumps({**summary, "losses": losses}, indent=2) + "\n")
        logger.info(f"Saved the head to {output_dir}: loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    return {**summary, "losses": losses}
