from .configuration_dinoworld import DinoWorldConfig
from .modeling_dinoworld import (
    DinoWorldForForecasting,
    DinoWorldOutput,
    DinoWorldPredictor,
    DinoWorldPreTrainedModel,
    DinoWorldRotaryEmbedding,
    block_causal_mask,
    spatial_coordinates,
    token_positions,
)

__all__ = [
    "DinoWorldConfig",
    "DinoWorldForForecasting",
    "DinoWorldOutput",
    "DinoWorldPredictor",
    "DinoWorldPreTrainedModel",
    "DinoWorldRotaryEmbedding",
    "block_causal_mask",
    "spatial_coordinates",
    "token_positions",
]
