#!/usr/bin/env python
"""Fit a segmentation or depth linear probe (BatchNorm + 1x1 conv) on frozen backbone features with 🤗 Accelerate.

    accelerate launch examples/train_linear_probe.py --model path/to/deltaworld --dataset cityscapes \
        --data_root /data/cityscapes --split train --output_dir heads/cityscapes
    accelerate launch examples/train_linear_probe.py --model path/to/deltaworld --dataset kitti \
        --data_root /data/kitti --split_file eigen_train_files.txt --output_dir heads/kitti
    python examples/train_linear_probe.py --model tiny-model --dataset synthetic --task segmentation --output_dir out

Only the labelled frames are used (the last frame of each official window, read with the same readers as
`evaluate_forecasting.py`): frames resized to `--size` on the short side, split into square crops, and the labels into
the matching halves, so the head sees exactly what the evaluation feeds it. The backbone (from a DeltaWorld or a
DeltaTok checkpoint) is frozen; only the head trains.

Losses: cross-entropy with `ignore_index=255` for segmentation; for depth the scale-invariant log loss (SILog,
Eigen et al. 2014, `sqrt(mean(d^2) - lambda * mean(d)^2)` with `d = log(prediction) - log(target)`, lambda 0.85, as
DINOv2's depth probes) or `--depth_loss l1`, over pixels with valid depth (> 0). Optimizer AdamW. The finished head is
written with `save_pretrained` and loads with `--head` in `evaluate_forecasting.py`.

Note: the official repository ships trained heads but not the code that trained them; this script is our recipe.
"""

import argparse
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

from deltatok_hf import DeltaTokModel, DeltaWorldForForecasting
from deltatok_hf.models.heads import (
    DeltaTokDepthHead,
    DeltaTokDepthHeadConfig,
    DeltaTokSegmentationHead,
    DeltaTokSegmentationHeadConfig,
)


# The dataset readers live next to this script (examples/ is on sys.path when it runs).
from forecasting_datasets import (
    IGNORE_INDEX,
    SyntheticLabelledFrames,
    align_to_labels,
    build_labelled_dataset,
    collate_windows,
    split_into_square_crops,
)


logger = get_logger(__name__)

DATASETS = ("vspw", "cityscapes", "kitti", "synthetic")
SILOG_LAMBDA = 0.85


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--model", type=str, required=True, help="DeltaWorld or DeltaTok folder / Hub id (its backbone is used)."
    )
    parser.add_argument("--dataset", type=str, required=True, choices=DATASETS)
    parser.add_argument("--data_root", type=str, default=None)
    parser.add_argument("--split", type=str, default="train", help="VSPW / Cityscapes split.")
    parser.add_argument("--split_file", type=str, default=None, help="KITTI split list.")
    parser.add_argument(
        "--task", type=str, default="segmentation", choices=("segmentation", "depth"), help="For --dataset synthetic."
    )
    parser.add_argument("--num_synthetic_images", type=int, default=64)
    parser.add_argument("--size", type=int, default=512, help="Frame short side (a multiple of 16).")
    parser.add_argument("--depth_loss", type=str, default="silog", choices=("silog", "l1"))
    parser.add_argument("--min_depth", type=float, default=None, help="Depth head range (config default: 1e-3 m).")
    parser.add_argument("--max_depth", type=float, default=None, help="Depth head range (config default: 80 m).")
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--weight_decay", type=float, default=1e-4)
    parser.add_argument("--train_batch_size", type=int, default=8)
    parser.add_argument("--max_train_steps", type=int, default=1000)
    parser.add_argument("--num_workers", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output_dir", type=str, required=True)
    args = parser.parse_args(argv)
    if args.size <= 0 or args.size % 16:
        raise ValueError(f"--size must be a positive multiple of 16 (the patch size), got {args.size}.")
    if args.max_train_steps < 1 or args.train_batch_size < 1:
        raise ValueError(
            "--max_train_steps and --train_batch_size must be >= 1, got "
            f"{args.max_train_steps} and {args.train_batch_size}."
        )
    if args.dataset != "synthetic" and args.data_root is None:
        raise ValueError(f"--data_root is required for --dataset {args.dataset}.")
    return args


def load_backbone_model(name_or_path: str) -> DeltaTokModel:
    """The frozen feature extractor: the tokenizer of a DeltaWorld checkpoint, or a DeltaTok checkpoint itself."""
    config_dict, _ = PretrainedConfig.get_config_dict(name_or_path)
    model_type = config_dict.get("model_type")
    if model_type == "deltaworld":
        return DeltaWorldForForecasting.from_pretrained(name_or_path).tokenizer
    if model_type == "deltatok":
        return DeltaTokModel.from_pretrained(name_or_path)
    raise ValueError(f"--model {name_or_path} has model_type {model_type!r}; expected 'deltaworld' or 'deltatok'.")


def build_dataset(args):
    if args.dataset == "synthetic":
        return SyntheticLabelledFrames(args.num_synthetic_images, size=args.size, task=args.task, seed=args.seed)
    # One-frame windows: exactly the labelled frames of the official windows (KITTI's frame >= 19 rule is dropped,
    # it only exists to fit 7-frame windows).
    extra = {"min_label_frame_index": 0} if args.dataset == "kitti" else {}
    return build_labelled_dataset(
        args.dataset,
        args.data_root,
        num_frames=1,
        frame_size=args.size,
        split=args.split,
        split_file=args.split_file,
        **extra,
    )


def build_head(task: str, hidden_size: int, num_labels: int | None, args):
    if task == "segmentation":
        return DeltaTokSegmentationHead(DeltaTokSegmentationHeadConfig(hidden_size=hidden_size, num_labels=num_labels))
    depth_range = {k: v for k, v in (("min_depth", args.min_depth), ("max_depth", args.max_depth)) if v is not None}
    return DeltaTokDepthHead(DeltaTokDepthHeadConfig(hidden_size=hidden_size, **depth_range))


def silog_loss(prediction: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Scale-invariant log loss over the valid pixels (see the module docstring)."""
    difference = torch.log(prediction[valid].clamp_min(1e-6)) - torch.log(target[valid])
    return torch.sqrt((difference.square().mean() - SILOG_LAMBDA * difference.mean().square()).clamp_min(1e-12))


def compute_loss(head, features, grid_size, labels, layout, task: str, depth_loss: str) -> torch.Tensor:
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


def main(argv=None) -> dict:
    args = parse_args(argv)
    accelerator = Accelerator()
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    set_seed(args.seed)

    # 1. Frozen backbone, dataset, head.
    backbone_model = load_backbone_model(args.model).eval().requires_grad_(False).to(accelerator.device)
    dataset = build_dataset(args)
    if len(dataset) == 0:
        raise ValueError(f"No labelled frames found for --dataset {args.dataset} under {args.data_root}.")
    task = dataset.task
    hidden_size = backbone_model.config.backbone_config.hidden_size
    head = build_head(task, hidden_size, getattr(dataset, "num_labels", None), args)
    optimizer = torch.optim.AdamW(head.parameters(), lr=args.learning_rate, weight_decay=args.weight_decay)
    dataloader = torch.utils.data.DataLoader(
        dataset,
        batch_size=args.train_batch_size,
        shuffle=True,
        drop_last=len(dataset) >= args.train_batch_size,
        collate_fn=collate_windows,
        num_workers=args.num_workers,
    )
    head, optimizer, dataloader = accelerator.prepare(head, optimizer, dataloader)

    # 2. Training loop over as many epochs as --max_train_steps needs.
    logger.info(
        f"Training a {task} probe on {len(dataset)} labelled frames of {args.dataset} for {args.max_train_steps} steps"
    )
    losses = []
    progress = tqdm(range(args.max_train_steps), disable=not accelerator.is_local_main_process, desc="steps")
    head.train()
    while len(losses) < args.max_train_steps:
        for batch in dataloader:
            frames, labels, layout = split_into_square_crops(batch["frames"][:, -1:], batch["labels"][:, -1:])
            grid_size = backbone_model.grid_size(*frames.shape[-2:])
            with torch.no_grad():
                features = backbone_model.extract_features(frames)[:, 0].float()  # (crops * batch, N, D)
            loss = compute_loss(head, features, grid_size, labels[:, 0], layout, task, args.depth_loss)
            accelerator.backward(loss)
            optimizer.step()
            optimizer.zero_grad()
            losses.append(accelerator.reduce(loss.detach(), reduction="mean").item())
            progress.update(1)
            progress.set_postfix(loss=f"{losses[-1]:.4f}")
            if len(losses) >= args.max_train_steps:
                break

    # 3. Save.
    accelerator.wait_for_everyone()
    summary = {
        "task": task,
        "dataset": args.dataset,
        "steps": len(losses),
        "first_loss": losses[0],
        "final_loss": losses[-1],
    }
    if accelerator.is_main_process:
        output_dir = Path(args.output_dir)
        head_model = accelerator.unwrap_model(head).eval()
        head_model.save_pretrained(output_dir)
        (output_dir / "training_summary.json").write_text(json.dumps({**summary, "losses": losses}, indent=2) + "\n")
        logger.info(f"Saved the head to {output_dir}: loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    return {**summary, "losses": losses}


if __name__ == "__main__":
    main()
