"""Pipelines: `DeltaWorldPipeline`, a `diffusers.DiffusionPipeline` over `model_index.json`."""

from .pipeline_deltaworld import DeltaWorldPipeline
from .pipeline_output import DeltaWorldPipelineOutput
from .selection import SELECTION_METHODS, candidate_weights, farthest_point_indices, k_medoids_indices, select_candidates

__all__ = [
    "SELECTION_METHODS",
    "DeltaWorldPipeline",
    "DeltaWorldPipelineOutput",
    "candidate_weights",
    "farthest_point_indices",
    "k_medoids_indices",
    "select_candidates",
]
