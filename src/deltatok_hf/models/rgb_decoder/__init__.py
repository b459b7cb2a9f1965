"""RGB decoder: (forecast) backbone patch features -> RGB frames, exact to the official `RGBHead`."""

from .configuration_rgb_decoder import DeltaTokRGBDecoderConfig
from .modeling_rgb_decoder import (
    DeltaTokRGBDecoder,
    DeltaTokRGBDecoderOutput,
    DeltaTokRGBDecoderPreTrainedModel,
    rgb_to_uint8,
    sincos_position_table,
)

# Registered with the Auto classes by `deltatok_hf.models` (imported first, as the parent package), with the others.

__all__ = [
    "DeltaTokRGBDecoder",
    "DeltaTokRGBDecoderConfig",
    "DeltaTokRGBDecoderOutput",
    "DeltaTokRGBDecoderPreTrainedModel",
    "rgb_to_uint8",
    "sincos_position_table",
]
