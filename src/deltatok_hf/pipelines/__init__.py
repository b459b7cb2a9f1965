"""Pipelines, registered with `transformers.pipeline` on import (task `"video-forecasting"`)."""

from transformers import AutoModel
from transformers.pipelines import PIPELINE_REGISTRY

from ..models.deltaworld import DeltaWorldForForecasting
from .pipeline_output import DeltaWorldPipelineOutput
from .video_forecasting import DeltaWorldPipeline

VIDEO_FORECASTING_TASK = "video-forecasting"


def _register() -> None:
    if VIDEO_FORECASTING_TASK in PIPELINE_REGISTRY.get_supported_tasks():
        return
    PIPELINE_REGISTRY.register_pipeline(
        VIDEO_FORECASTING_TASK,
        pipeline_class=DeltaWorldPipeline,
        pt_model=AutoModel,
        default={"pt": ()},
        type="video",
    )


_register()

__all__ = ["DeltaWorldPipeline", "DeltaWorldPipelineOutput", "VIDEO_FORECASTING_TASK"]
