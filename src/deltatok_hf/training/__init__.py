"""Training DeltaTok and DeltaWorld with 🤗 Accelerate.

- `recipes`: the published optimisation recipes (`--preset released|paper`) and named model sizes;
- `arguments`: the typed arguments of each command (`HfArgumentParser` dataclasses, checked in `__post_init__`);
- `optim`: parameter groups, AdamW, the warm-up schedule, freezing, checksums;
- `checkpointing`: atomic `checkpoint-{step}` folders, `trainer_state.json`, `latest`, pruning;
- `data`: `build_clip_dataset` (the one place `--train_data` is resolved), collation, the token cache reader;
- `loop`: the Accelerate loop;
- `cards`: model cards from the packaged templates, validated offline;
- `deltatok`, `deltaworld`, `cache`: what `deltatok-hf train-deltatok | train-deltaworld | cache-tokens` and the
  example scripts run.
- `experiments`, `ablation`: the helpers of the synthetic experiments and of the ablation ladder in `examples/`
  (imported from their modules).
"""

from .arguments import (
    CacheTokensArguments,
    DataArguments,
    DeltaTokTrainingArguments,
    DeltaWorldTrainingArguments,
    TrainingArguments,
    arguments_from_namespace,
    build_argument_parser,
    parse_arguments,
)
from .cache import benchmark_token_cache, build_token_cache, cache_delta_tokens, load_cache_tokenizer
from .cards import (
    LIBRARY_NAME,
    PIPELINE_TAGS,
    build_card_data,
    check_card_metadata,
    command_line,
    hub_repo_id,
    render_model_card,
    render_training_card,
    template_names,
)
from .checkpointing import (
    CHECKPOINT_PATTERN,
    TRAINER_STATE_NAME,
    TrainerState,
    list_checkpoints,
    prune_checkpoints,
    register_pretrained_checkpoint_hooks,
    remove_incomplete_checkpoints,
    resolve_resume_checkpoint,
    save_checkpoint,
    write_json,
)
from .data import (
    build_clip_dataset,
    collate_token_rows,
    collate_training_clips,
    encode_clip_batch,
    load_token_cache,
    read_cache_info,
)
from .deltatok import build_deltatok_model, compute_deltatok_loss, train_deltatok
from .deltaworld import (
    CallCounter,
    build_deltaworld_model,
    compute_loss_from_frames,
    compute_loss_from_tokens,
    train_deltaworld,
)
from .loop import build_accelerator, end_run, finish_run, start_run, train
from .optim import (
    DECAY_MODULE_TYPES,
    apply_training_options,
    DELTATOK_PARTS,
    DELTAWORLD_PARTS,
    build_lr_scheduler,
    build_optimizer,
    build_parameter_groups,
    freeze_parameters,
    parameter_checksum,
    set_base_learning_rate,
)
from .dinoworld import DinoWorldTrainingArguments, train_dinoworld
from .rgb_decoder import RGBDecoderTrainingArguments, train_rgb_decoder
from .recipes import DELTATOK_RECIPES, DELTAWORLD_RECIPES, PRESETS, TrainingRecipe, get_recipe, resolve_config

__all__ = [
    "DinoWorldTrainingArguments",
    "train_dinoworld",
    "RGBDecoderTrainingArguments",
    "train_rgb_decoder",
    "CHECKPOINT_PATTERN",
    "DECAY_MODULE_TYPES",
    "DELTATOK_PARTS",
    "DELTATOK_RECIPES",
    "DELTAWORLD_PARTS",
    "DELTAWORLD_RECIPES",
    "LIBRARY_NAME",
    "PIPELINE_TAGS",
    "PRESETS",
    "TRAINER_STATE_NAME",
    "CacheTokensArguments",
    "CallCounter",
    "DataArguments",
    "DeltaTokTrainingArguments",
    "DeltaWorldTrainingArguments",
    "TrainerState",
    "TrainingArguments",
    "TrainingRecipe",
    "apply_training_options",
    "arguments_from_namespace",
    "benchmark_token_cache",
    "build_accelerator",
    "build_argument_parser",
    "build_card_data",
    "build_clip_dataset",
    "build_deltatok_model",
    "build_deltaworld_model",
    "build_lr_scheduler",
    "build_optimizer",
    "build_parameter_groups",
    "build_token_cache",
    "cache_delta_tokens",
    "check_card_metadata",
    "collate_token_rows",
    "collate_training_clips",
    "command_line",
    "compute_deltatok_loss",
    "compute_loss_from_frames",
    "compute_loss_from_tokens",
    "encode_clip_batch",
    "end_run",
    "finish_run",
    "freeze_parameters",
    "get_recipe",
    "hub_repo_id",
    "list_checkpoints",
    "load_cache_tokenizer",
    "load_token_cache",
    "parameter_checksum",
    "parse_arguments",
    "prune_checkpoints",
    "read_cache_info",
    "register_pretrained_checkpoint_hooks",
    "remove_incomplete_checkpoints",
    "render_model_card",
    "render_training_card",
    "resolve_config",
    "resolve_resume_checkpoint",
    "save_checkpoint",
    "set_base_learning_rate",
    "start_run",
    "template_names",
    "train",
    "train_deltatok",
    "train_deltaworld",
    "write_json",
]
