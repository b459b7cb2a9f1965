"""Published optimisation recipes, and the named model sizes the training commands accept.

The official code (github.com/amazon-far/deltatok: `training/base.py`, `training/deltatok.py`, `training/world.py`,
`configs/*.yaml`) and the paper disagree on two tokenizer settings, so both are offered as presets:

| setting                                      | DeltaTok `released` | DeltaTok `paper` | DeltaWorld (both)          |
|----------------------------------------------|---------------------|------------------|----------------------------|
| optimizer                                    | AdamW               | AdamW            | AdamW                      |
| learning rate                                | 1e-3                | 1e-3             | 1e-4                       |
| weight decay (Linear/Conv weights only)      | 1e-2                | 1e-4             | 0.4                        |
| reconstruction loss                          | log-cosh            | MSE              | smooth-L1, beta 0.1 (model) |
| gradient clipping (norm)                     | 1e-2                | 1e-2             | none                       |
| warm-up (optimizer steps, linear, then flat) | 5000                | 5000             | 5000                       |
| frames per clip                              | 2                   | 2                | 8                          |
| effective batch                              | 1024                | 1024             | 1024                       |

The released `deltatok-kinetics` and `deltaworld-kinetics` weights were trained with the `released` recipe.
A recipe holds optimisation settings only; the model's own hyper-parameters keep their defaults in the config classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..models import DeltaTokConfig, DeltaWorldConfig

MODEL_TYPES = ("deltatok", "deltaworld")


@dataclass(frozen=True)
class TrainingRecipe:
    """Optimisation settings of one published recipe. `max_grad_norm=None` means no clipping."""

    learning_rate: float
    weight_decay: float
    warmup_steps: int
    max_grad_norm: float | None
    num_frames: int
    effective_batch_size: int = 1024
    reconstruction_loss: str | None = None  # tokenizer only; the value of the `DeltaTokConfig` field


DELTATOK_RECIPES = {
    # training/deltatok.py defaults + configs/deltatok_vitb_dinov3_vitb_kinetics.yaml (gradient_clip_val 1e-2).
    "released": TrainingRecipe(1e-3, 1e-2, 5000, 1e-2, num_frames=2, reconstruction_loss="log_cosh"),
    # Note: the paper reports weight decay 1e-4 and an MSE loss; everything else as the released code.
    "paper": TrainingRecipe(1e-3, 1e-4, 5000, 1e-2, num_frames=2, reconstruction_loss="mse"),
}
# training/world.py defaults; KineticsTrain samples 8 frames. Paper and code agree on these predictor settings.
DELTAWORLD_RECIPES = {
    "released": TrainingRecipe(1e-4, 4e-1, 5000, None, num_frames=8),
    "paper": TrainingRecipe(1e-4, 4e-1, 5000, None, num_frames=8),
}
PRESETS = ("released", "paper")


def get_recipe(model_type: str, preset: str) -> TrainingRecipe:
    """The recipe `preset` (`released` or `paper`) of `model_type` (`deltatok` or `deltaworld`)."""
    if model_type not in MODEL_TYPES:
        raise ValueError(f"model_type must be one of {MODEL_TYPES}, got {model_type!r}.")
    recipes = DELTATOK_RECIPES if model_type == "deltatok" else DELTAWORLD_RECIPES
    if preset not in recipes:
        raise ValueError(f"Unknown preset {preset!r} for {model_type}; expected one of {sorted(recipes)}.")
    return recipes[preset]


def resolve_config(model_type: str, name_or_path: str) -> DeltaTokConfig | DeltaWorldConfig:
    """`tiny`, `vitb` (the released ViT-B sizes, the config defaults) or a `config.json` / a folder holding one."""
    if model_type not in MODEL_TYPES:
        raise ValueError(f"model_type must be one of {MODEL_TYPES}, got {model_type!r}.")
    config_class = DeltaTokConfig if model_type == "deltatok" else DeltaWorldConfig
    if name_or_path == "tiny":
        return config_class.tiny()
    if name_or_path == "vitb":
        return config_class()
    path = Path(name_or_path)
    if path.is_dir() or path.is_file():
        return config_class.from_pretrained(str(path))
    raise ValueError(f"model_config must be 'tiny', 'vitb' or a config path, got {name_or_path!r}.")


__all__ = [
    "DELTATOK_RECIPES",
    "DELTAWORLD_RECIPES",
    "PRESETS",
    "TrainingRecipe",
    "get_recipe",
    "resolve_config",
]
