"""Model classes, registered with the transformers Auto classes on import."""

from transformers import AutoConfig, AutoModel

from .deltatok import DeltaTokConfig, DeltaTokModel
from .deltaworld import DeltaWorldConfig, DeltaWorldForForecasting
from .dinoworld import DinoWorldConfig, DinoWorldForForecasting
from .heads import (
    DeltaTokDepthHead,
    DeltaTokDepthHeadConfig,
    DeltaTokSegmentationHead,
    DeltaTokSegmentationHeadConfig,
)
from .rgb_decoder import DeltaTokRGBDecoder, DeltaTokRGBDecoderConfig

for _config_class, _model_class in (
    (DeltaTokConfig, DeltaTokModel),
    (DeltaWorldConfig, DeltaWorldForForecasting),
    (DinoWorldConfig, DinoWorldForForecasting),
    (DeltaTokRGBDecoderConfig, DeltaTokRGBDecoder),
):
    AutoConfig.register(_config_class.model_type, _config_class, exist_ok=True)
    AutoModel.register(_config_class, _model_class, exist_ok=True)

__all__ = [
    "DeltaTokConfig",
    "DeltaTokDepthHead",
    "DeltaTokDepthHeadConfig",
    "DeltaTokModel",
    "DeltaTokRGBDecoder",
    "DeltaTokRGBDecoderConfig",
    "DeltaTokSegmentationHead",
    "DeltaTokSegmentationHeadConfig",
    "DeltaWorldConfig",
    "DeltaWorldForForecasting",
    "DinoWorldConfig",
    "DinoWorldForForecasting",
]
