from .configuration_deltaworld import DeltaWorldConfig
from .modeling_deltaworld import (
    DeltaWorldForecastOutput,
    DeltaWorldForForecasting,
    DeltaWorldOutput,
    DeltaWorldPredictor,
    DeltaWorldPreTrainedModel,
    causal_context_mask,
)

__all__ = [
    "DeltaWorldConfig",
    "DeltaWorldForecastOutput",
    "DeltaWorldForForecasting",
    "DeltaWorldOutput",
    "DeltaWorldPredictor",
    "DeltaWorldPreTrainedModel",
    "causal_context_mask",
]
