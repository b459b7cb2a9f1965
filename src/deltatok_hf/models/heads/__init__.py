"""Segmentation and depth task heads that read (forecast) DeltaTok / DINOv3 patch features."""

from transformers import AutoConfig, AutoModel

from .configuration_heads import DeltaTokDepthHeadConfig, DeltaTokSegmentationHeadConfig
from .modeling_heads import (
    DeltaTokDepthHead,
    DeltaTokDepthHeadOutput,
    DeltaTokHeadPreTrainedModel,
    DeltaTokSegmentationHead,
    DeltaTokSegmentationHeadOutput,
)


AutoConfig.register(DeltaTokSegmentationHeadConfig.model_type, DeltaTokSegmentationHeadConfig, exist_ok=True)
AutoConfig.register(DeltaTokDepthHeadConfig.model_type, DeltaTokDepthHeadConfig, exist_ok=True)
AutoModel.register(DeltaTokSegmentationHeadConfig, DeltaTokSegmentationHead, exist_ok=True)
AutoModel.register(DeltaTokDepthHeadConfig, DeltaTokDepthHead, exist_ok=True)

__all__ = [
    "DeltaTokDepthHead",
    "DeltaTokDepthHeadConfig",
    "DeltaTokDepthHeadOutput",
    "DeltaTokHeadPreTrainedModel",
    "DeltaTokSegmentationHead",
    "DeltaTokSegmentationHeadConfig",
    "DeltaTokSegmentationHeadOutput",
]
