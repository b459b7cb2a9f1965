"""`DeltaWorldPipeline`: many plausible futures of a video, as a diffusers pipeline.

```python
from deltatok_hf import DeltaWorldPipeline

pipe = DeltaWorldPipeline.from_pretrained("org/deltaworld-kinetics")   # a saved pipeline, a bare model dir or a Hub id
out = pipe("clip.mp4", num_samples=20, num_future_frames=3)            # or PIL list / (T,H,W,3) array / (T,3,H,W) tensor
out.future_features        # (num_samples, num_future_frames, num_patches, hidden_size)
```

There is no scheduler and no denoising loop (like diffusers' LTX latent upsampler): the loop is the autoregressive
rollout, one step per future time, each step one forward pass for all samples at once.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from diffusers import DiffusionPipeline
from huggingface_hub import snapshot_download
from huggingface_hub.constants import HF_HUB_OFFLINE
from torch import nn
from transformers import AutoModel

from ..data.video_processor import DeltaWorldVideoProcessor, PreparedClip, is_clip_batch
from .pipeline_output import DeltaWorldPipelineOutput
from .postprocessing import HEAD_COMPONENTS, apply_heads_and_decoder, finish_output, sample_mean, to_uint8_frames, view_fields
from .selection import SELECTION_METHODS, select_candidates


OUTPUT_TYPES = ("pt", "np", "pil", "latent")
HUB_KWARGS = ("cache_dir", "revision", "token", "local_files_only", "force_download", "proxies")


def feature_geometry(world_model: nn.Module) -> nn.Module:
    """What owns the patch grid and the backbone features: a delta-token model's tokenizer, or the patch-level world
    model itself (both give `patch_size`, `grid_size(height, width)` and `extract_features(frames)`)."""
    return getattr(world_model, "tokenizer", world_model)


class DeltaWorldPipeline(DiffusionPipeline):
    r"""
    Sample many plausible futures of a video clip with a world model ([`DeltaWorldForForecasting`]).

    Steps of a call: 1. check the inputs; 2. prepare frames and times (the [`DeltaWorldVideoProcessor`]); 3. encode
    the context once and roll out every sample together, one step per future time (progress bar, callback); 4. decode
    to features (step by step from the last context frame), task heads, RGB; 5. post-process.

    Args:
        world_model ([`DeltaWorldForForecasting`] or [`DinoWorldForForecasting`]): the world model (it holds its frozen
            backbone, and its tokenizer for delta-token models). Patch-level models (the paper's DINO-world rungs) have
            no delta tokens: `output_type="latent"`, `decode` and `num_candidates` need a delta-token model.
        segmentation_head / depth_head (*optional*): task heads reading patch features (`forward(features (B, N, D),
            grid_size=, output_size=)` returning `.logits` / `.predicted_depth`).
        rgb_decoder (*optional*): a features -> pixels model (`forward(features (B, N, D), grid_size=)` returning
            `.pixel_values` `(B, 3, H, W)` RGB on 0..1) for forecasts you can look at.
        size, resize_mode, context_frames, context_interval: the [`DeltaWorldVideoProcessor`] settings, saved in
            `model_index.json` (defaults: 256, `"square_crops"`, 4 frames 0.2 s apart: the paper's protocol).
    """

    model_cpu_offload_seq = "world_model->segmentation_head->depth_head->rgb_decoder"
    _optional_components = ["segmentation_head", "depth_head", "rgb_decoder"]
    _callback_tensor_inputs = ["delta_tokens", "features"]

    def __init__(
        self,
        world_model: nn.Module,
        segmentation_head: nn.Module | None = None,
        depth_head: nn.Module | None = None,
        rgb_decoder: nn.Module | None = None,
        size: int = 256,
        resize_mode: str = "square_crops",
        context_frames: int = 4,
        context_interval: float = 0.2,
    ):
        super().__init__()
        self.register_modules(
            world_model=world_model, segmentation_head=segmentation_head, depth_head=depth_head, rgb_decoder=rgb_decoder
        )
        self.register_to_config(
            size=size, resize_mode=resize_mode, context_frames=context_frames, context_interval=context_interval
        )
        for module in (world_model, segmentation_head, depth_head, rgb_decoder):
            if module is not None:
                module.eval()
        self.video_processor = DeltaWorldVideoProcessor(
            size=size,
            resize_mode=resize_mode,
            context_frames=context_frames,
            context_interval=context_interval,
            patch_size=feature_geometry(world_model).patch_size,
        )

    # ------------------------------------------------------------------ loading

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs) -> "DeltaWorldPipeline":
        """
        Load a saved pipeline (`model_index.json` + one folder per component), a bare world-model directory (what the
        converter and the training commands write; components and settings may be passed as keyword arguments), or a
        Hub id of either (resolved with `huggingface_hub.snapshot_download` first, which also works offline from the
        cache: diffusers' own Hub download refuses components whose library is not diffusers or transformers).

        Args:
            dtype (`torch.dtype`, *optional*): precision of every component, e.g. `torch.bfloat16`.
            kwargs: Hub arguments (`cache_dir`, `revision`, `token`, `local_files_only`, ...), component overrides
                (`rgb_decoder=...`) and settings (`size=...`), as for `DiffusionPipeline.from_pretrained`.
        """
        path = Path(pretrained_model_name_or_path)
        hub_kwargs = {key: kwargs.pop(key) for key in HUB_KWARGS if key in kwargs}
        if not path.is_dir():
            local_files_only = hub_kwargs.pop("local_files_only", None) or HF_HUB_OFFLINE
            hub_kwargs.pop("force_download", None)
            path = Path(
                snapshot_download(str(pretrained_model_name_or_path), local_files_only=local_files_only, **hub_kwargs)
            )
            hub_kwargs = {}
        if (path / "model_index.json").is_file():
            return super().from_pretrained(path, **hub_kwargs, **kwargs)
        if not (path / "config.json").is_file():
            raise ValueError(
                f"{pretrained_model_name_or_path} holds neither a pipeline (model_index.json) nor a world model "
                "(config.json)."
            )
        dtype = kwargs.pop("dtype", kwargs.pop("torch_dtype", None))
        if "world_model" not in kwargs:
            from .. import models  # noqa: F401, PLC0415 (registers our model types with AutoModel)

            kwargs["world_model"] = AutoModel.from_pretrained(path, dtype=dtype)
        pipe = cls(**kwargs)
        return pipe.to(dtype=dtype) if dtype is not None else pipe

    # ------------------------------------------------------------------ 1. checks

    def check_inputs(
        self, video, num_samples, num_candidates, candidate_selection, output_type, generator, seed, noise,
        callback_on_step_end_tensor_inputs,
    ):  # fmt: skip
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}.")
        if seed is not None and generator is not None:
            raise ValueError("Pass either seed or generator, not both.")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise ValueError(f"seed must be an integer, got {seed!r}.")
        num_clips = len(video) if is_clip_batch(video) else 1
        if isinstance(generator, (list, tuple)) and len(generator) != num_clips:
            raise ValueError(f"generator is a list of {len(generator)} generators for {num_clips} clips; pass one per clip.")
        if num_samples is not None and (not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples < 1):
            raise ValueError(f"num_samples must be an integer >= 1, got {num_samples!r}.")
        if candidate_selection not in SELECTION_METHODS:
            raise ValueError(f"candidate_selection must be one of {SELECTION_METHODS}, got {candidate_selection!r}.")
        if num_candidates is not None:
            if not isinstance(num_candidates, int) or isinstance(num_candidates, bool) or num_candidates < 1:
                raise ValueError(f"num_candidates must be an integer >= 1, got {num_candidates!r}.")
            if num_samples is not None and num_candidates < num_samples:
                raise ValueError(f"num_candidates={num_candidates} must be >= num_samples={num_samples}.")
            if noise is not None:
                raise ValueError("Pass either noise or num_candidates, not both.")
        if (output_type == "latent" or num_candidates is not None) and not hasattr(self.world_model, "decode_future"):
            raise ValueError(
                f"output_type='latent' and num_candidates need a delta-token world model; {type(self.world_model).__name__} "
                "predicts patch features directly."
            )
        unknown = set(callback_on_step_end_tensor_inputs or ()) - set(self._callback_tensor_inputs)
        if unknown:
            raise ValueError(f"callback_on_step_end_tensor_inputs must be among {self._callback_tensor_inputs}, got {sorted(unknown)}.")

    # ------------------------------------------------------------------ 2.-5. the call

    @torch.no_grad()
    def __call__(
        self,
        video: Any,
        fps: float | None = None,
        timestamps: Sequence[float] | torch.Tensor | None = None,
        num_future_frames: int | None = None,
        frame_interval: float | None = None,
        future_timestamps: Sequence[float] | torch.Tensor | None = None,
        max_context_frames: int | None = None,
        context_interval: float | None = None,
        start_time: float | None = None,
        size: int | None = None,
        resize_mode: str | None = None,
        ground_truth_frames: Any = None,
        read_ground_truth: bool = False,
        num_samples: int | None = None,
        num_candidates: int | None = None,
        candidate_selection: str = "k_medoids",
        generator: torch.Generator | list[torch.Generator] | None = None,
        seed: int | None = None,
        noise: torch.Tensor | None = None,
        output_type: str = "pt",
        return_dict: bool = True,
        callback_on_step_end: Callable[[Any, int, float, dict], dict | None] | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("delta_tokens",),
        max_samples_shown: int = 4,
    ) -> DeltaWorldPipelineOutput | list | tuple:
        """
        Forecast one clip or a list of clips.

        Args:
            video: a video path, a list of PIL images (RGB), a `(T, H, W, 3)` uint8/float array, a `(T, 3, H, W)`
                uint8/float tensor (values 0..255), or a list of those (a batch).
            fps / timestamps: times of in-memory frames (one is required; files carry their own).
            num_future_frames (default 3) and frame_interval (seconds, default: the context's median spacing), or
                future_timestamps (seconds, any spacing, after the last context time, on the same clock).
            max_context_frames: for a file, the context frames read (default: the pipeline's `context_frames`, 4); for
                frames, keep the last N. context_interval / start_time: spacing (default 0.2 s) and start of a file's
                context (default: it ends on the last frame). Only the context frames are decoded.
            size / resize_mode: override the pipeline's settings for this call.
            ground_truth_frames: the real future frames (a clip form, one per future time); or read_ground_truth=True
                for a file that continues past the context. Only the backbone sees them.
            num_samples (default: the model's `num_samples_eval`): futures per clip.
            num_candidates: draw this many futures in token space and decode only `num_samples` of them, chosen for
                diversity in token space over the whole rollout; `candidate_indices` says which, `candidate_weights`
                what share of the drawn futures each stands for (`mean_future_features` is weighted by it). With
                `output_type="latent"` the chosen ones come back as delta tokens only, to decode later with [`decode`].
            candidate_selection: how to choose them: `"k_medoids"` (default: typical futures of different modes, the
                largest first) or `"farthest_point"` (the most spread out, extremes included).
            generator (one, or a list with one per clip) or seed: randomness of the noise queries; noise
                (`(num_samples, F, Dp)`, or `(num_views, num_samples, F, Dp)`): explicit noise queries.
            output_type: `"pt"`, `"np"`, `"pil"` (tensors, a labelled picture in `image`, RGB frames as PIL images) or
                `"latent"` (delta tokens only, no decoding; decode later with [`decode`]).
            return_dict: `False` gives tuples instead of [`DeltaWorldPipelineOutput`]s.
            callback_on_step_end: `callback(pipe, step, timestamp, callback_kwargs)` after every rollout step, with the
                step's `callback_on_step_end_tensor_inputs` (`"delta_tokens"` `(num_views * num_samples, D)`,
                `"features"` `(num_views * num_samples, N, D)`) for every clip.
            max_samples_shown: samples drawn in the picture (`output_type="pil"`).

        Returns:
            one [`DeltaWorldPipelineOutput`] per view: a clip cut into two square crops gives a list of two (each with its
            `crop_box`); a batch gives a list with one such result per clip.
        """
        # 1. Check inputs.
        self.check_inputs(
            video, num_samples, num_candidates, candidate_selection, output_type, generator, seed, noise,
            callback_on_step_end_tensor_inputs,
        )  # fmt: skip
        clips = list(video) if is_clip_batch(video) else [video]
        processor = self.video_processor
        if size is not None or resize_mode is not None:
            settings = {**processor.config, **({"size": size} if size is not None else {})}
            processor = DeltaWorldVideoProcessor(**{**settings, **({"resize_mode": resize_mode} if resize_mode else {})})

        # 2. Prepare frames and times (all on the CPU, before the model runs).
        prepared = [
            processor.preprocess(
                clip, fps=fps, timestamps=timestamps, num_future_frames=num_future_frames, frame_interval=frame_interval,
                future_timestamps=future_timestamps, context_frames=max_context_frames, context_interval=context_interval,
                start_time=start_time, ground_truth_frames=ground_truth_frames, read_ground_truth=read_ground_truth,
            )
            for clip in clips
        ]  # fmt: skip
        generators = list(generator) if isinstance(generator, (list, tuple)) else [generator] * len(clips)
        if seed is not None:
            generators = [torch.Generator(device=self.device).manual_seed(seed)] * len(clips)
        if num_candidates is not None and num_samples is None:
            num_samples = self.world_model.config.num_samples_eval

        # 3.-4. Roll out (and decode) every clip, all its views and samples in one batch.
        results = []
        total_steps = sum(clip.future_timestamps.numel() for clip in prepared)
        with self.progress_bar(total=total_steps) as progress_bar:
            for clip, clip_generator in zip(prepared, generators):

                def on_step(step, delta_tokens, features, clip=clip):
                    if callback_on_step_end is not None:
                        available = {"delta_tokens": delta_tokens, "features": features}
                        callback_kwargs = {name: available[name] for name in callback_on_step_end_tensor_inputs}
                        callback_on_step_end(self, step, float(clip.future_timestamps[step]), callback_kwargs)
                    progress_bar.update()

                results.append(
                    self._forecast_clip(
                        clip, num_samples, num_candidates, candidate_selection, clip_generator, noise, output_type, on_step
                    )
                )

        # 5. Post-process.
        outputs = [self._postprocess_clip(clip, result, output_type, max_samples_shown) for clip, result in zip(prepared, results)]
        self.maybe_free_model_hooks()
        if not return_dict:
            outputs = [[output.to_tuple() for output in views] for views in outputs]
        outputs = [views[0] if len(views) == 1 else views for views in outputs]
        return outputs if is_clip_batch(video) else outputs[0]

    def _forecast_clip(
        self, clip: PreparedClip, num_samples, num_candidates, candidate_selection, generator, noise, output_type, on_step
    ) -> dict:
        """One clip's rollout; returns float32 CPU tensors with a leading `num_views` axis."""
        device = self.device  # once: diffusers finds it by walking the components
        views = clip.views.to(device)
        num_views = views.shape[0]
        # Times relative to the first context frame, as the official data (RoPE only sees differences anyway).
        origin = clip.context_timestamps[0]
        context_times = (clip.context_timestamps - origin).to(torch.float32).to(device).expand(num_views, -1)
        future_times = (clip.future_timestamps - origin).to(torch.float32).to(device).expand(num_views, -1)
        if noise is not None:
            noise = torch.as_tensor(noise)
            noise = (noise.expand(num_views, *noise.shape) if noise.ndim == 3 else noise).to(device)
        decode_now = output_type != "latent" and num_candidates is None
        output = self.world_model.generate(
            frames=views, timestamps=context_times, future_timestamps=future_times,
            num_samples=num_candidates or num_samples, generator=generator, noise=noise, decode=decode_now,
            step_callback=on_step,
        )  # fmt: skip
        result = {
            "future_delta_tokens": output.future_delta_tokens,
            "context_delta_tokens": output.context_delta_tokens,
            "context_features": output.context_features,
            "noise": output.noise,
            "future_features": output.future_features,
            "candidate_indices": None,
            "candidate_weights": None,
        }
        if num_candidates is not None:
            tokens = output.future_delta_tokens  # (num_views, num_candidates, F, D)
            chosen, weights = select_candidates(tokens.flatten(2), num_samples, candidate_selection)  # (num_views, num_samples)
            pick = lambda values: values.gather(1, chosen.view(*chosen.shape, *[1] * (values.ndim - 2)).expand(-1, -1, *values.shape[2:]))  # noqa: E731
            result.update(future_delta_tokens=pick(tokens), noise=None if output.noise is None else pick(output.noise))
            result.update(candidate_indices=chosen, candidate_weights=weights)
        if output_type != "latent" and result["future_features"] is None:
            result["future_features"] = self._decode_tokens(result["future_delta_tokens"], output.context_features[:, -1], views.shape[-2:])
        result = {key: None if value is None else value.float().cpu() for key, value in result.items()}
        result["candidate_indices"] = None if result["candidate_indices"] is None else result["candidate_indices"].long()
        if clip.ground_truth_views is not None:
            result["ground_truth_features"] = feature_geometry(self.world_model).extract_features(clip.ground_truth_views.to(device)).float().cpu()
        return result

    def _decode_tokens(self, delta_tokens: torch.Tensor, last_features: torch.Tensor, frame_size) -> torch.Tensor:
        """Future delta tokens `(num_views, S, F, D)` -> features `(num_views, S, F, N, D)`, step by step from
        `last_features` `(num_views, N, D)`: the same computation as decoding inside the rollout."""
        return self.world_model.decode_future(delta_tokens, last_features, feature_geometry(self.world_model).grid_size(*frame_size))

    # ------------------------------------------------------------------ decoding later

    @torch.no_grad()
    def decode(
        self, output: DeltaWorldPipelineOutput, sample_indices: Sequence[int] | torch.Tensor | None = None, output_type: str = "pt"
    ) -> DeltaWorldPipelineOutput:
        """
        Decode a latent forecast (`output_type="latent"`): features (and heads / RGB) of the chosen samples, equal to
        what decoding during the rollout gives. Any output with delta tokens can be decoded again the same way (a
        select-then-decode one included: its `candidate_indices` and `candidate_weights` follow the samples kept, and
        `mean_future_features` stays weighted by them).

        Args:
            output: a [`DeltaWorldPipelineOutput`] with `future_delta_tokens` and `context_features`.
            sample_indices: which samples to decode (default: all), in the order wanted; the per-sample fields
                (`noise`, `candidate_indices`, `candidate_weights`) are taken in the same order.
            output_type: `"pt"`, `"np"` or `"pil"`.
        """
        if output.future_delta_tokens is None or output.context_features is None:
            raise ValueError("decode needs an output with future_delta_tokens and context_features (output_type='latent').")
        if output_type not in OUTPUT_TYPES[:3]:
            raise ValueError(f"decode produces features: output_type must be one of {OUTPUT_TYPES[:3]}, got {output_type!r}.")
        fields = {name: getattr(output, name) for name in output.__dataclass_fields__}
        tokens = torch.as_tensor(output.future_delta_tokens)
        if sample_indices is not None:
            sample_indices = torch.as_tensor(sample_indices, dtype=torch.long).flatten()
            if sample_indices.numel() < 1 or int(sample_indices.min()) < 0 or int(sample_indices.max()) >= tokens.shape[0]:
                raise ValueError(f"sample_indices must be in [0, {tokens.shape[0]}), got {sample_indices.tolist()}.")
            tokens = tokens[sample_indices]
            # Every per-sample field follows the samples kept (select-then-decode's candidate fields included).
            for name in ("noise", "candidate_indices", "candidate_weights"):
                value = getattr(output, name)
                fields[name] = None if value is None else torch.as_tensor(value)[sample_indices]
        # The weights of the mean: the pipeline's own always pass these checks; an edited output may not.
        weights = None if fields["candidate_weights"] is None else torch.as_tensor(fields["candidate_weights"])[None]
        if weights is not None:
            if weights.shape != (1, tokens.shape[0]):
                raise ValueError(f"candidate_weights must have shape ({tokens.shape[0]},), got {tuple(weights.shape[1:])}.")
            if not torch.isfinite(weights).all() or (weights < 0).any() or not weights.sum() > 0:
                raise ValueError(f"candidate_weights must be finite, non-negative and not all zero, got {weights[0].tolist()}.")
        frame_size = tuple(torch.as_tensor(output.context_frames).shape[1:3])
        context_features = torch.as_tensor(output.context_features)[None]  # (1, T, N, D): one view
        dtype = self.world_model.dtype
        features = self._decode_tokens(tokens[None].to(self.device, dtype), context_features[:, -1].to(self.device, dtype), frame_size)
        result = {
            "future_features": features.float().cpu(),
            "context_features": context_features,
            "ground_truth_features": None if output.ground_truth_features is None else torch.as_tensor(output.ground_truth_features)[None],
        }
        result["mean_future_features"] = sample_mean(result["future_features"], weights)
        result.update(self._heads_and_decoder(result, frame_size))
        decoded = {key: value for key, value in view_fields(result, 0).items() if value is not None and key != "context_features"}
        fields.update(decoded, future_delta_tokens=tokens, image=None)
        return finish_output(DeltaWorldPipelineOutput(**fields), output_type, max_samples_shown=4)

    # ------------------------------------------------------------------ heads, RGB, outputs

    def _heads_and_decoder(self, result: dict, frame_size: tuple[int, int]) -> dict:
        heads = {component: getattr(self, component, None) for component in HEAD_COMPONENTS}
        grid_size = feature_geometry(self.world_model).grid_size(*frame_size)
        return apply_heads_and_decoder(result, heads, getattr(self, "rgb_decoder", None), grid_size, frame_size, self.device)

    def _postprocess_clip(self, clip: PreparedClip, result: dict, output_type: str, max_samples_shown: int) -> list:
        frame_size = tuple(clip.views.shape[-2:])
        if result["future_features"] is not None:
            result["mean_future_features"] = sample_mean(result["future_features"], result["candidate_weights"])
            result.update(self._heads_and_decoder(result, frame_size))
        outputs = []
        for index in range(clip.views.shape[0]):
            output = DeltaWorldPipelineOutput(
                **view_fields(result, index),
                context_timestamps=clip.context_timestamps.to(torch.float32),
                future_timestamps=clip.future_timestamps.to(torch.float32),
                grid_size=feature_geometry(self.world_model).grid_size(*frame_size),
                context_frames=to_uint8_frames(clip.views[index]),
                frame_size=clip.layout.frame_size,
                crop_box=None if clip.crop_boxes is None else tuple(clip.crop_boxes[index]),
                ground_truth_frames=None if clip.ground_truth_views is None else to_uint8_frames(clip.ground_truth_views[index]),
            )
            outputs.append(finish_output(output, output_type, max_samples_shown))
        return outputs


__all__ = ["DeltaWorldPipeline"]
