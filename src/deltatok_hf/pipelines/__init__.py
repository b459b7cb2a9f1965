"""Pipelines: `DeltaWorldPipeline`, a `diffusers.DiffusionPipeline` over `model_index.json`."""

from .pipeline_deltaworld import DeltaWorldPipeline
from .pipeline_output import DeltaWorldPipelineOutput
from .selection import farthest_point_indices

__all__ = ["DeltaWorldPipeline", "DeltaWorldPipelineOutput", "farthest_point_indices"]
