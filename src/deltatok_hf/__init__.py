"""deltatok-hf: DeltaTok / DeltaWorld generative world models for the Hugging Face ecosystem."""

__version__ = "0.1.0"

from .models import (
    DeltaTokConfig,
    DeltaTokDepthHead,
    DeltaTokDepthHeadConfig,
    DeltaTokModel,
    DeltaTokRGBDecoder,
    DeltaTokRGBDecoderConfig,
    DeltaTokSegmentationHead,
    DeltaTokSegmentationHeadConfig,
    DeltaWorldConfig,
    DeltaWorldForForecasting,
    DinoWorldConfig,
    DinoWorldForForecasting,
)
from .models.deltatok import DeltaTokOutput, DeltaTokReconstructionOutput
from .models.deltaworld import DeltaWorldForecastOutput, DeltaWorldOutput
from .models.rgb_decoder import DeltaTokRGBDecoderOutput, rgb_to_uint8
from .models.dinoworld import DinoWorldOutput
from .inference import compile_for_inference, tune_cpu_allocator
from .pipelines import DeltaWorldPipeline, DeltaWorldPipelineOutput

__all__ = [
    "DeltaTokConfig",
    "DeltaTokDepthHead",
    "DeltaTokDepthHeadConfig",
    "DeltaTokSegmentationHead",
    "DeltaTokSegmentationHeadConfig",
    "DeltaTokModel",
    "DeltaTokRGBDecoder",
    "DeltaTokRGBDecoderConfig",
    "DeltaTokRGBDecoderOutput",
    "DeltaTokOutput",
    "DeltaTokReconstructionOutput",
    "DeltaWorldConfig",
    "DeltaWorldForForecasting",
    "DeltaWorldForecastOutput",
    "DeltaWorldOutput",
    "DeltaWorldPipeline",
    "DeltaWorldPipelineOutput",
    "DinoWorldConfig",
    "DinoWorldForForecasting",
    "DinoWorldOutput",
    "compile_for_inference",
    "tune_cpu_allocator",
    "rgb_to_uint8",
]
