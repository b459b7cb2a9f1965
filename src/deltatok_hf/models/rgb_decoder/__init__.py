"""RGB decoder: (forecast) backbone patch features -> RGB frames, exact to the official `RGBHead`."""

from transformers import AutoConfig, AutoModel

from .configuration_rgb_decoder import DeltaTokRGBDecoderConfig
from .modeling_rgb_decoder import (
    DeltaTokRGBDecoder,
    DeltaTokRGBDecoderOutput,
    DeltaTokRGBDecoderPreTrainedModel,
    rgb_to_uint8,
    sincos_position_table,
)


AutoConfig.register(DeltaTokRGBDecoderConfig.model_type, DeltaTokRGBDecoderConfig, exist_ok=True)
AutoModel.register(DeltaTokRGBDecoderConfig, DeltaTokRGBDecoder, exist_ok=True)

__all__ = [
    "DeltaTokRGBDecoder",
    "DeltaTokRGBDecoderConfig",
    "DeltaTokRGBDecoderOutput",
    "DeltaTokRGBDecoderPreTrainedModel",
    "rgb_to_uint8",
    "sincos_position_table",
]
