"""Typed arguments of the training commands, checked once in `__post_init__`.

`transformers.HfArgumentParser` turns each dataclass into the command-line options of the example scripts and of the
`deltatok-hf train-deltatok | train-deltaworld | cache-tokens` commands (`build_argument_parser`), so both front ends
parse the same options into the same object, and the loop reads only dataclass fields. Recipe fields left at `None`
are filled from `preset` (see `recipes.py`); model hyper-parameters keep their defaults in the config classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import ClassVar, Literal

from .recipes import TrainingRecipe, get_recipe


def _help(text: str, **extra) -> dict:
    return {"metadata": {"help": text, **extra}}


@dataclass
class DataArguments:
    """Where training clips come from and how they are sampled (shared by training and the token cache)."""

    train_data: str = field(
        default="synthetic",
        **_help(
            "A folder of videos (or of WebDataset .tar / .parquet shards), one video file, a `datasets.save_to_disk` "
            "folder, a Hub dataset id, a LeRobot v3 dataset (folder or Hub id; clips never cross an episode), or "
            "`synthetic` (moving shapes with several possible futures; no download)."
        ),
    )
    camera_key: str | None = field(
        default=None,
        **_help("The camera of a LeRobot dataset (e.g. `observation.images.front`); needed when it has several."),
    )
    num_frames: int | None = field(default=None, **_help("Frames per clip (default: the recipe's, 2 tokenizer, 8 world)."))
    frame_size: int = field(default=256, **_help("Square crop size in pixels (a multiple of the patch size 16)."))
    time_stride_range: list[float] = field(
        default_factory=lambda: [1 / 25, 1 / 3], **_help("Smallest and largest seconds between sampled frames.")
    )
    num_synthetic_videos: int = field(default=512, **_help("Size of the synthetic dataset."))
    clips_per_video: int = field(default=1, **_help("Clips sampled from every real video per epoch."))
    dataloader_num_workers: int = field(default=0, **_help("DataLoader worker processes."))
    seed: int = field(default=0, **_help("Seed of the model initialisation, the data order and every random draw."))

    def __post_init__(self) -> None:
        if self.frame_size < 16 or self.frame_size % 16:
            raise ValueError(f"frame_size must be a positive multiple of 16 (the patch size), got {self.frame_size}.")
        if len(self.time_stride_range) != 2 or not 0 < self.time_stride_range[0] <= self.time_stride_range[1]:
            raise ValueError(
                f"time_stride_range must be two seconds 0 < smallest <= largest, got {self.time_stride_range}."
            )
        self.time_stride_range = [float(value) for value in self.time_stride_range]
        for name in ("num_synthetic_videos", "clips_per_video"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if self.dataloader_num_workers < 0:
            raise ValueError(f"dataloader_num_workers must be >= 0, got {self.dataloader_num_workers}.")
        if self.num_frames is not None and self.num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {self.num_frames}.")


@dataclass
class TrainingArguments(DataArguments):
    """The options both training commands share; the model-specific ones live in the subclasses."""

    model_type: ClassVar[str]
    min_num_frames: ClassVar[int] = 1

    # model
    model_config: str = field(default="tiny", **_help("`tiny`, `vitb` (released sizes) or a path to a config.json."))
    init_from: str | None = field(default=None, **_help("Trained checkpoint (folder or Hub id) to fine-tune."))
    freeze: list[str] = field(default_factory=list, **_help("Parts to freeze (named parts or parameter-name prefixes)."))
    gradient_checkpointing: bool = field(default=False, **_help("Recompute activations in the backward pass."))
    # optimisation
    preset: Literal["released", "paper"] = field(default="released", **_help("Recipe (see examples/README.md)."))
    learning_rate: float | None = field(default=None, **_help("Peak learning rate (default: the recipe's)."))
    weight_decay: float | None = field(default=None, **_help("AdamW weight decay on Linear/Conv weights only."))
    warmup_steps: int | None = field(default=None, **_help("Linear warm-up (optimizer steps), then constant."))
    max_grad_norm: float | None = field(
        default=None, **_help("Gradient clipping norm (default: the recipe's); 0 or less turns clipping off.")
    )
    train_batch_size: int = field(default=8, **_help("Clips per process and micro-batch."))
    gradient_accumulation_steps: int = field(default=1, **_help("Micro-batches per optimizer step."))
    max_train_steps: int = field(default=1000, **_help("Optimizer steps."))
    mixed_precision: Literal["no", "fp16", "bf16"] | None = field(
        default=None, **_help("Passed to Accelerator (default: what `accelerate config` set).")
    )
    # checkpoints and logging
    output_dir: str | None = field(default=None, **_help("Output folder (default: outputs/<model type>)."))
    checkpointing_steps: int = field(default=500, **_help("Write checkpoint-<step> every this many optimizer steps."))
    checkpoints_total_limit: int | None = field(default=None, **_help("Keep at most this many checkpoints."))
    resume_from_checkpoint: str | None = field(
        default=None, **_help("`latest` (the newest complete checkpoint of output_dir, or a fresh start) or a folder.")
    )
    logging_steps: int = field(default=10, **_help("Log the loss every this many optimizer steps."))
    report_to: str | None = field(default=None, **_help("Tracker for Accelerator(log_with=...), e.g. tensorboard."))
    push_to_hub: bool = field(default=False, **_help("Upload the output folder (without checkpoints) at the end."))
    hub_model_id: str | None = field(default=None, **_help("Hub repository for --push_to_hub (default: output_dir's name)."))
    write_rank_checksums: bool = field(
        default=False, **_help("Write rank<i>_checksum.json (SHA-256 of the trainable parameters) on every process.")
    )

    def __post_init__(self) -> None:
        if not hasattr(type(self), "model_type"):
            raise TypeError(
                "TrainingArguments holds the shared options; use DeltaTokTrainingArguments or "
                "DeltaWorldTrainingArguments (or a subclass that sets model_type)."
            )
        super().__post_init__()
        recipe = self.recipe
        for name in ("learning_rate", "weight_decay", "warmup_steps", "max_grad_norm", "num_frames"):
            if getattr(self, name) is None:
                setattr(self, name, getattr(recipe, name))
        if self.max_grad_norm is not None and self.max_grad_norm <= 0:
            self.max_grad_norm = None  # documented: 0 or less turns clipping off
        if self.output_dir is None:
            self.output_dir = f"outputs/{self.model_type}"
        if self.num_frames < self.min_num_frames:
            raise ValueError(f"num_frames must be >= {self.min_num_frames} for {self.model_type}, got {self.num_frames}.")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}.")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}.")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}.")
        for name in ("train_batch_size", "gradient_accumulation_steps", "max_train_steps", "checkpointing_steps", "logging_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if self.checkpoints_total_limit is not None and self.checkpoints_total_limit < 1:
            raise ValueError(f"checkpoints_total_limit must be >= 1 or unset, got {self.checkpoints_total_limit}.")

    @property
    def recipe(self) -> TrainingRecipe:
        return get_recipe(self.model_type, self.preset)


@dataclass
class DeltaTokTrainingArguments(TrainingArguments):
    """`deltatok-hf train-deltatok` / `examples/train_deltatok.py`."""

    model_type: ClassVar[str] = "deltatok"

    reconstruction_loss: Literal["log_cosh", "mse"] | None = field(
        default=None, **_help("Default: the preset's, log_cosh (released) or mse (paper).")
    )
    backbone_name_or_path: str | None = field(
        default=None,
        **_help(
            "DINOv3 weights for a new tokenizer (default: the config's backbone_name_or_path). `random` keeps the "
            "random backbone (tiny configs have none to load)."
        ),
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.reconstruction_loss is None:
            self.reconstruction_loss = self.recipe.reconstruction_loss


@dataclass
class DeltaWorldTrainingArguments(TrainingArguments):
    """`deltatok-hf train-deltaworld` / `examples/train_deltaworld.py`."""

    model_type: ClassVar[str] = "deltaworld"
    min_num_frames: ClassVar[int] = 2  # a context token and a target

    tokenizer: str | None = field(
        default=None, **_help("Trained DeltaTok (folder or Hub id) for a new DeltaWorld (default with --token_cache: "
                              "the cache's tokenizer).")
    )
    token_cache: str | None = field(
        default=None,
        **_help("Folder written by `deltatok-hf cache-tokens`; training then never runs the backbone or the encoder."),
    )
    num_samples_train: int | None = field(
        default=None, **_help("Best-of-Many candidates per target (default: the config's num_samples_train).")
    )
    deterministic: bool = field(default=False, **_help("Train one learned query instead of Best-of-Many (ablation)."))

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_samples_train is not None and self.num_samples_train < 1:
            raise ValueError(f"num_samples_train must be >= 1, got {self.num_samples_train}.")
        if self.deterministic and self.num_samples_train is not None:
            raise ValueError("num_samples_train has no effect with deterministic=True (one learned query); drop one.")


@dataclass
class CacheTokensArguments(DataArguments):
    """`deltatok-hf cache-tokens` / `examples/cache_delta_tokens.py`."""

    output_dir: str | None = field(default=None, **_help("Folder of the token cache (required).", required=True))
    tokenizer: str | None = field(default=None, **_help("Trained DeltaTok (folder or Hub id)."))
    model_config: str = field(default="tiny", **_help("Tokenizer sizes when --tokenizer is not given (random init)."))
    views_per_video: int = field(default=1, **_help("Augmented views (random clip + crop) of every video."))
    rope_augmentation: bool = field(
        default=False,
        **_help("Encode in train mode (one RoPE-rescale draw per batch, as on-the-fly training); default: eval mode."),
    )
    store_last_features: bool = field(default=False, **_help("Also store the last frame's backbone features (fp16)."))
    batch_size: int = field(default=8, **_help("Clips per encoder batch."))
    benchmark: int = field(default=0, **_help("Then time this many DeltaWorld training steps from frames and from tokens."))
    benchmark_world_config: str = field(default="tiny", **_help("DeltaWorld sizes for --benchmark."))
    benchmark_num_samples_train: int | None = field(default=None, **_help("Best-of-Many K for --benchmark."))

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.output_dir:
            raise ValueError("output_dir is required: the folder the token cache is written to.")
        if self.num_frames is None:
            self.num_frames = get_recipe("deltaworld", "released").num_frames  # the clips DeltaWorld trains on
        for name in ("views_per_video", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if self.benchmark < 0:
            raise ValueError(f"benchmark must be >= 0 steps, got {self.benchmark}.")
        if self.benchmark_num_samples_train is not None and self.benchmark_num_samples_train < 1:
            raise ValueError(f"benchmark_num_samples_train must be >= 1, got {self.benchmark_num_samples_train}.")


def build_argument_parser(arguments_class: type, **parser_kwargs):
    """An `HfArgumentParser` for `arguments_class` (pass `add_help=False` to use it as a sub-command's parent)."""
    from transformers import HfArgumentParser

    return HfArgumentParser(arguments_class, **parser_kwargs)


def arguments_from_namespace(arguments_class: type, namespace):
    """The dataclass from a parsed namespace that may hold other keys too (e.g. the CLI's `command`)."""
    names = {item.name for item in fields(arguments_class) if item.init}
    return arguments_class(**{key: value for key, value in vars(namespace).items() if key in names})


def parse_arguments(arguments_class: type, argv=None, **parser_kwargs):
    """Parse `argv` (default `sys.argv[1:]`) into `arguments_class`; unknown options are an error."""
    (arguments,) = build_argument_parser(arguments_class, **parser_kwargs).parse_args_into_dataclasses(argv)
    return arguments


__all__ = [
    "CacheTokensArguments",
    "DataArguments",
    "DeltaTokTrainingArguments",
    "DeltaWorldTrainingArguments",
    "TrainingArguments",
    "arguments_from_namespace",
    "build_argument_parser",
    "parse_arguments",
]
