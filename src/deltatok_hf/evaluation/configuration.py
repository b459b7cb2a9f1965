"""Settings of the forecasting benchmark and of the linear probe: the one place where their defaults live.

Both are dataclasses that `transformers.HfArgumentParser` turns into command-line options (`--num_samples` and
`--num-samples` alike), so `examples/evaluate_forecasting.py`, `examples/train_linear_probe.py` and
`deltatok-hf evaluate` read the same defaults and the same checks; a default not set here comes from the model's
config (e.g. the number of samples, `DeltaWorldConfig.num_samples_eval`).
"""

import argparse
import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Literal

from transformers import HfArgumentParser

from ..data.benchmarks import (
    BENCHMARK_FRAME_SIZE,
    BENCHMARK_NUM_CONTEXT_FRAMES,
    BENCHMARK_NUM_FUTURE_FRAMES,
    LABELLED_DATASETS,
)
from ..data.video_processor import check_positive_integer, check_positive_number


UNLABELLED_DATASETS = ("synthetic", "videos")
EVALUATION_DATASETS = LABELLED_DATASETS + UNLABELLED_DATASETS
PROBE_DATASETS = LABELLED_DATASETS + ("synthetic",)


def _check_optional_positive_integer(name: str, value: int | None) -> None:
    if value is not None:
        check_positive_integer(name, value)


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps a script's docstring as written and shows every optional option's default (read from the dataclass)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        return action.help if action.required else super()._get_help_string(action)


def config_argument_parser(config_class: type, description: str | None = None, **kwargs) -> HfArgumentParser:
    """Command-line options of a config dataclass (`--num_samples` and `--num-samples` alike), defaults shown.

    Scripts call `parse_args_into_dataclasses`; a `deltatok-hf` sub-command takes it as a parent parser
    (`add_help=False`) and builds the config with [`BenchmarkDataConfig.from_namespace`].
    """
    return HfArgumentParser(config_class, description=description, formatter_class=_HelpFormatter, **kwargs)


def literal_choices(config_class: type, name: str) -> tuple | None:
    """The allowed values of a `Literal` field of a config dataclass, or None for other fields."""
    annotation = typing.get_type_hints(config_class)[name]
    return typing.get_args(annotation) if typing.get_origin(annotation) is Literal else None


@dataclass(kw_only=True)
class BenchmarkDataConfig:
    """What the benchmark script and the probe share: the model, where the data is, the frame size, the run."""

    model: str = field(metadata={"help": "DeltaWorld folder or Hub id."})
    data_root: str | None = field(default=None, metadata={"help": "Local dataset root (nothing is downloaded)."})
    split_file: str | None = field(default=None, metadata={"help": "KITTI split list (e.g. the Eigen test list)."})
    size: int = field(
        default=BENCHMARK_FRAME_SIZE,
        metadata={"help": "Frame short side in pixels, a multiple of the patch size (official evaluation: 512)."},
    )
    num_workers: int = field(default=0, metadata={"help": "Data loader worker processes."})
    seed: int = field(default=0, metadata={"help": "Seed of the noise queries, the synthetic data and the shuffling."})
    output_dir: str = field(metadata={"help": "Where the results (or the trained head) are written."})

    def __post_init__(self):
        check_positive_integer("size", self.size)
        if isinstance(self.num_workers, bool) or not isinstance(self.num_workers, int) or self.num_workers < 0:
            raise ValueError(f"`num_workers` must be a non-negative integer, got {self.num_workers!r}.")
        for item in dataclasses.fields(self):
            choices = literal_choices(type(self), item.name)
            if choices is not None and getattr(self, item.name) not in choices:
                raise ValueError(f"`{item.name}` must be one of {choices}, got {getattr(self, item.name)!r}.")
        if self.dataset != "synthetic" and self.data_root is None:
            raise ValueError(f"`data_root` is required for dataset {self.dataset!r}.")
        if self.dataset == "kitti" and self.split_file is None:
            raise ValueError(
                "`split_file` is required for dataset 'kitti' (lines `<date>/<drive>/image_02/data/<frame>.png "
                "<depth> <focal>`, e.g. the Eigen test list)."
            )

    @classmethod
    def from_namespace(cls, namespace: argparse.Namespace):
        """Build the config from parsed options (e.g. a `deltatok-hf` sub-command's), ignoring other attributes."""
        values = vars(namespace)
        return cls(**{item.name: values[item.name] for item in dataclasses.fields(cls) if item.name in values})


@dataclass(kw_only=True)
class ForecastEvaluationConfig(BenchmarkDataConfig):
    """The forecasting benchmark: windows of `context + max(horizons)` frames, `num_samples` futures per window."""

    dataset: Literal[EVALUATION_DATASETS] = field(
        metadata={"help": "Benchmark (with a task head) or unlabelled source (feature-space scores only)."}
    )
    split: str = field(default="val", metadata={"help": "VSPW / Cityscapes split."})
    head: str | None = field(default=None, metadata={"help": "Converted task head folder (segmentation or depth)."})
    num_samples: int | None = field(
        default=None, metadata={"help": "Futures sampled per window (default: the model config's num_samples_eval)."}
    )
    context: int = field(default=BENCHMARK_NUM_CONTEXT_FRAMES, metadata={"help": "Context frames."})
    horizons: list[int] = field(
        default_factory=lambda: [1, BENCHMARK_NUM_FUTURE_FRAMES], metadata={"help": "Future frames per rollout."}
    )
    time_stride_seconds: float | None = field(
        default=None, metadata={"help": "Spacing of the window's frames (default: the official one of the dataset)."}
    )
    batch_size: int = field(default=1, metadata={"help": "Windows per batch and process."})
    max_windows: int | None = field(default=None, metadata={"help": "Evaluate only the first windows."})
    num_synthetic_videos: int = field(default=64, metadata={"help": "Clips of the synthetic dataset."})

    def __post_init__(self):
        super().__post_init__()
        _check_optional_positive_integer("num_samples", self.num_samples)
        check_positive_integer("context", self.context)
        if not self.horizons:
            raise ValueError("`horizons` must list at least one number of future frames.")
        for horizon in self.horizons:
            check_positive_integer("horizons", horizon)
        if self.time_stride_seconds is not None:
            check_positive_number("time_stride_seconds", self.time_stride_seconds)
        check_positive_integer("batch_size", self.batch_size)
        _check_optional_positive_integer("max_windows", self.max_windows)
        check_positive_integer("num_synthetic_videos", self.num_synthetic_videos)
        if self.head is not None and self.dataset in UNLABELLED_DATASETS:
            raise ValueError(
                f"`head` needs a labelled dataset ({', '.join(LABELLED_DATASETS)}), got dataset {self.dataset!r}."
            )

    @property
    def sorted_horizons(self) -> list[int]:
        """The horizons in increasing order, each once (the order of the report's sections)."""
        return sorted(set(self.horizons))


@dataclass(kw_only=True)
class LinearProbeConfig(BenchmarkDataConfig):
    """The linear probe (BatchNorm + 1x1 conv) on frozen backbone features, trained on the benchmark's labelled frames."""

    model: str = field(metadata={"help": "DeltaWorld or DeltaTok folder / Hub id (its frozen backbone is used)."})
    dataset: Literal[PROBE_DATASETS] = field(
        metadata={"help": "Labelled frames to train on (synthetic: coloured rectangles)."}
    )
    split: str = field(default="train", metadata={"help": "VSPW / Cityscapes split."})
    task: Literal["segmentation", "depth"] = field(
        default="segmentation", metadata={"help": "Task of the synthetic dataset (the others imply theirs)."}
    )
    num_synthetic_images: int = field(default=64, metadata={"help": "Images of the synthetic dataset."})
    depth_loss: Literal["silog", "l1"] = field(default="silog", metadata={"help": "Depth training loss."})
    min_depth: float | None = field(default=None, metadata={"help": "Depth head range (head config default)."})
    max_depth: float | None = field(default=None, metadata={"help": "Depth head range (head config default)."})
    learning_rate: float = field(default=1e-3, metadata={"help": "AdamW learning rate."})
    weight_decay: float = field(default=1e-4, metadata={"help": "AdamW weight decay."})
    train_batch_size: int = field(default=8, metadata={"help": "Frames per batch and process."})
    max_train_steps: int = field(default=1000, metadata={"help": "Optimizer steps."})

    def __post_init__(self):
        super().__post_init__()
        check_positive_integer("num_synthetic_images", self.num_synthetic_images)
        check_positive_number("learning_rate", self.learning_rate)
        if isinstance(self.weight_decay, bool) or not isinstance(self.weight_decay, (int, float)) or self.weight_decay < 0:
            raise ValueError(f"`weight_decay` must be a non-negative number, got {self.weight_decay!r}.")
        check_positive_integer("train_batch_size", self.train_batch_size)
        check_positive_integer("max_train_steps", self.max_train_steps)
