from .configuration_deltatok import DeltaTokConfig
from .modeling_deltatok import (
    DeltaTokModel,
    DeltaTokOutput,
    DeltaTokPreTrainedModel,
    DeltaTokReconstructionOutput,
    log_cosh_loss,
    reconstruction_loss,
)

__all__ = [
    "DeltaTokConfig",
    "DeltaTokModel",
    "DeltaTokOutput",
    "DeltaTokPreTrainedModel",
    "DeltaTokReconstructionOutput",
    "log_cosh_loss",
    "reconstruction_loss",
]
