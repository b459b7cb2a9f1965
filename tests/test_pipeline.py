"""DeltaWorldPipeline (a diffusers DiffusionPipeline): input forms, timing, sizes, randomness, heads, precision,
loading, callbacks, latent output, decoding later, select-then-decode and bad inputs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

import deltatok_hf  # noqa: F401  (registers the models)
from deltatok_hf import DeltaWorldConfig, DeltaWorldForForecasting
from deltatok_hf.pipelines import DeltaWorldPipeline, DeltaWorldPipelineOutput
from conftest import grey_frames, offline_hub_cache, write_test_video

HIDDEN = 64  # DeltaWorldConfig.tiny() token width


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return DeltaWorldForForecasting(DeltaWorldConfig.tiny()).eval()


@pytest.fixture
def pipe(model):
    return DeltaWorldPipeline(world_model=model)


def _clip(num_frames=3, height=32, width=32, seed=0) -> torch.Tensor:
    """(T, 3, H, W) uint8."""
    return torch.randint(0, 256, (num_frames, 3, height, width), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def _heads():
    heads = pytest.importorskip("deltatok_hf.models.heads", reason="task heads module not available")
    torch.manual_seed(1)
    segmentation = heads.DeltaTokSegmentationHead(heads.DeltaTokSegmentationHeadConfig(hidden_size=HIDDEN, num_labels=5))
    depth = heads.DeltaTokDepthHead(heads.DeltaTokDepthHeadConfig(hidden_size=HIDDEN, num_bins=8))
    return {"segmentation_head": segmentation.eval(), "depth_head": depth.eval()}


# ------------------------------------------------------------------ input forms


def test_output_shapes_from_a_tensor_clip(pipe):
    out = pipe(_clip(3), fps=5, num_samples=4, num_future_frames=2, size=32, seed=0)
    assert isinstance(out, DeltaWorldPipelineOutput)
    assert out.future_features.shape == (4, 2, 4, HIDDEN)  # (samples, future, patches, hidden)
    assert out.mean_future_features.shape == (2, 4, HIDDEN)
    torch.testing.assert_close(out.mean_future_features, out.future_features.mean(0))
    assert out.future_delta_tokens.shape == (4, 2, HIDDEN)
    assert out.context_features.shape == (3, 4, HIDDEN)
    assert out.context_delta_tokens.shape == (3, HIDDEN)
    assert out.grid_size == (2, 2) and out.crop_box is None
    torch.testing.assert_close(out.context_timestamps, torch.tensor([0.0, 0.2, 0.4]))
    torch.testing.assert_close(out.future_timestamps, torch.tensor([0.6, 0.8]))
    assert out.context_frames.shape == (3, 32, 32, 3) and out.context_frames.dtype == torch.uint8
    assert out.future_features.dtype == torch.float32


def test_every_input_form_gives_the_same_forecast(pipe):
    clip = _clip(3)
    as_array = clip.permute(0, 2, 3, 1).numpy()  # (T, H, W, 3) uint8
    forms = {
        "tensor uint8": clip,
        "tensor float": clip.float(),
        "numpy": as_array,
        "numpy float": as_array.astype(np.float32),
        "pil list": [Image.fromarray(frame) for frame in as_array],
    }
    results = {name: pipe(form, fps=5, num_samples=2, size=32, seed=3) for name, form in forms.items()}
    reference = results["tensor uint8"].future_features
    for name, out in results.items():
        torch.testing.assert_close(out.future_features, reference, msg=f"input form {name!r} differs")


def test_video_file_input_uses_its_own_timestamps(pipe, tmp_path):
    pytest.importorskip("av")
    path = write_test_video(tmp_path / "clip.mp4", grey_frames(5, 32, 48, 0, 40), fps=10, codec="libx264")
    out = pipe(str(path), num_samples=2, num_future_frames=2, size=32, max_context_frames=3, context_interval=0.1, seed=0)
    assert isinstance(out, list) and len(out) == 2  # 48x32 -> two square crops
    np.testing.assert_allclose(out[0].context_timestamps.numpy(), [0.2, 0.3, 0.4], atol=1e-4)
    np.testing.assert_allclose(out[0].future_timestamps.numpy(), [0.5, 0.6], atol=1e-4)
    with pytest.raises(ValueError, match="carries its own timestamps"):
        pipe(str(path), fps=10, num_samples=1, size=32)


def test_batch_of_clips_gives_a_list(pipe):
    clips = [_clip(2, seed=0), _clip(3, seed=1).permute(0, 2, 3, 1).numpy()]
    outs = pipe(clips, fps=5, num_samples=2, size=32, seed=0)
    assert isinstance(outs, list) and len(outs) == 2
    assert outs[0].context_features.shape[0] == 2 and outs[1].context_features.shape[0] == 3
    single = pipe(clips[1], fps=5, num_samples=2, size=32, seed=0)
    torch.testing.assert_close(outs[1].future_features, single.future_features)


# ------------------------------------------------------------------ sizes


@pytest.mark.parametrize("height,width", [(32, 48), (48, 32)], ids=["wide", "tall"])
def test_square_crops_of_rectangular_frames(pipe, height, width):
    outs = pipe(_clip(2, height, width), fps=5, num_samples=2, size=32, resize_mode="square_crops", seed=0)
    assert isinstance(outs, list) and len(outs) == 2
    assert outs[0].crop_box == (0, 0, 32, 32)
    assert outs[1].crop_box == ((0, 16, 32, 32) if width > height else (16, 0, 32, 32))
    for out in outs:
        assert out.future_features.shape == (2, 3, 4, HIDDEN)
        assert out.frame_size == (height, width)
    # The crops see different pixels, so their forecasts differ.
    assert not torch.equal(outs[0].context_frames, outs[1].context_frames)


@pytest.mark.parametrize("height,width", [(32, 48), (48, 32)], ids=["wide", "tall"])
def test_resize_square_of_rectangular_frames(pipe, height, width):
    out = pipe(_clip(2, height, width), fps=5, num_samples=2, size=32, resize_mode="resize_square", seed=0)
    assert isinstance(out, DeltaWorldPipelineOutput)
    assert out.context_frames.shape == (2, 32, 32, 3) and out.grid_size == (2, 2)


def test_square_crops_resize_the_short_side(pipe):
    outs = pipe(_clip(2, 64, 96), fps=5, num_samples=1, size=32, seed=0)
    assert outs[0].frame_size == (32, 48) and outs[0].context_frames.shape[1:3] == (32, 32)


def test_resize_mode_none_keeps_rectangular_frames(pipe):
    out = pipe(_clip(2, 32, 48), fps=5, num_samples=1, resize_mode="none", seed=0)
    assert out.grid_size == (2, 3) and out.future_features.shape == (1, 3, 6, HIDDEN)
    with pytest.raises(ValueError, match="multiples of the patch size"):
        pipe(_clip(2, 30, 48), fps=5, num_samples=1, resize_mode="none")


# ------------------------------------------------------------------ timing and randomness


def test_same_seed_same_futures_other_seed_other_futures(pipe):
    clip = _clip(3)
    first = pipe(clip, fps=5, num_samples=3, size=32, seed=7)
    second = pipe(clip, fps=5, num_samples=3, size=32, seed=7)
    third = pipe(clip, fps=5, num_samples=3, size=32, seed=8)
    torch.testing.assert_close(first.future_delta_tokens, second.future_delta_tokens, rtol=0, atol=0)
    assert not torch.allclose(first.future_delta_tokens, third.future_delta_tokens)
    # The samples of one call differ from each other.
    assert not torch.allclose(first.future_delta_tokens[0], first.future_delta_tokens[1])


def test_pipeline_futures_equal_model_generate(pipe, model):
    clip = _clip(3).float()
    timestamps = torch.tensor([0.0, 0.25, 0.5])
    future = torch.tensor([0.6, 0.9, 1.7])
    out = pipe(clip, timestamps=timestamps, future_timestamps=future, num_samples=3, resize_mode="none",
               generator=torch.Generator().manual_seed(11))  # fmt: skip
    reference = model.generate(
        frames=clip[None], timestamps=timestamps[None], future_timestamps=future[None], num_samples=3,
        generator=torch.Generator().manual_seed(11),
    )  # fmt: skip
    torch.testing.assert_close(out.future_features, reference.future_features[0])
    torch.testing.assert_close(out.future_delta_tokens, reference.future_delta_tokens[0])
    # Replaying the returned noise gives the same futures.
    replay = pipe(clip, timestamps=timestamps, future_timestamps=future, num_samples=3, resize_mode="none", noise=out.noise)
    torch.testing.assert_close(replay.future_features, out.future_features)


def test_irregular_future_timestamps_and_frame_interval(pipe):
    out = pipe(_clip(2), timestamps=[1.0, 1.5], future_timestamps=[1.6, 2.5, 4.0], num_samples=1, size=32, seed=0)
    torch.testing.assert_close(out.future_timestamps, torch.tensor([1.6, 2.5, 4.0]))
    torch.testing.assert_close(out.context_timestamps, torch.tensor([1.0, 1.5]))
    spaced = pipe(_clip(2), fps=5, num_future_frames=2, frame_interval=0.5, num_samples=1, size=32, seed=0)
    torch.testing.assert_close(spaced.future_timestamps, torch.tensor([0.7, 1.2]))
    # The time shift does not matter (RoPE sees differences): same futures at the same relative times.
    shifted = pipe(_clip(2), timestamps=[0.0, 0.5], future_timestamps=[0.6, 1.5, 3.0], num_samples=1, size=32, seed=0)
    torch.testing.assert_close(shifted.future_features, out.future_features, atol=1e-4, rtol=1e-4)


def test_max_context_frames_keeps_the_last_frames(pipe):
    clip = _clip(5)
    out = pipe(clip, fps=10, max_context_frames=2, num_samples=1, size=32, seed=0)
    torch.testing.assert_close(out.context_timestamps, torch.tensor([0.3, 0.4]))
    assert torch.equal(out.context_frames, clip[-2:].permute(0, 2, 3, 1))


# ------------------------------------------------------------------ shared work


def test_only_context_frames_are_encoded_and_shared_work_runs_once(model):
    pipe = DeltaWorldPipeline(world_model=model)
    backbone_batches = []
    hook = model.tokenizer.backbone.register_forward_hook(
        lambda module, args, kwargs, output: backbone_batches.append(kwargs["pixel_values"].shape[0]), with_kwargs=True
    )
    encoder_calls = []
    original_encode = model.tokenizer.encode

    def counting_encode(*args, **kwargs):
        encoder_calls.append(args[0].shape)
        return original_encode(*args, **kwargs)

    model.tokenizer.encode = counting_encode
    try:
        model.tokenizer._black_frame_cache.clear()
        pipe(_clip(3, 32, 48), fps=5, num_samples=6, num_future_frames=4, size=32, seed=0)  # 2 crops
        # One backbone call for the 2 crops x 3 context frames, one for the (then cached) black frame.
        assert sorted(backbone_batches) == [1, 6]
        # One encoder call: all 2 x 3 context pairs together; never the 6 x 4 predicted frames.
        assert len(encoder_calls) == 1 and tuple(encoder_calls[0][:2]) == (2, 3)
        backbone_batches.clear(), encoder_calls.clear()
        pipe(_clip(3, 32, 48), fps=5, num_samples=6, num_future_frames=4, size=32, seed=0)
        assert backbone_batches == [6] and len(encoder_calls) == 1  # black frame cached
    finally:
        hook.remove()
        del model.tokenizer.encode


# ------------------------------------------------------------------ heads, precision, pictures


def test_heads_give_per_sample_and_mean_maps(model):
    heads = _heads()
    pipe = DeltaWorldPipeline(world_model=model, **heads)
    out = pipe(_clip(2), fps=5, num_samples=3, num_future_frames=2, size=32, seed=0,
               ground_truth_frames=_clip(2, seed=5))  # fmt: skip
    segmentation, depth = out.task_maps["segmentation"], out.task_maps["depth"]
    assert segmentation.shape == (3, 2, 32, 32) and segmentation.dtype == torch.int64
    assert depth.shape == (3, 2, 32, 32) and depth.is_floating_point()
    assert out.mean_task_maps["segmentation"].shape == (2, 32, 32)
    assert out.context_task_maps["depth"].shape == (2, 32, 32)
    assert out.ground_truth_task_maps["segmentation"].shape == (2, 32, 32)
    # "mean" maps are the head applied to the sample-mean features (the paper's protocol).
    expected = heads["segmentation_head"](out.mean_future_features, grid_size=(2, 2), output_size=(32, 32)).logits.argmax(1)
    assert torch.equal(out.mean_task_maps["segmentation"], expected)
    no_heads = DeltaWorldPipeline(world_model=model)(_clip(2), fps=5, num_samples=1, size=32, seed=0)
    assert no_heads.task_maps is None and no_heads.mean_task_maps is None


def test_bfloat16_outputs_are_finite_and_close_to_float32():
    torch.manual_seed(0)
    model = DeltaWorldForForecasting(DeltaWorldConfig.tiny()).eval()
    reference = DeltaWorldPipeline(world_model=model)(_clip(3), fps=5, num_samples=2, size=32, seed=0)
    torch.manual_seed(0)
    low_model = DeltaWorldForForecasting(DeltaWorldConfig.tiny()).eval()
    low = DeltaWorldPipeline(world_model=low_model).to(dtype=torch.bfloat16)
    assert low.world_model.dtype == torch.bfloat16
    out = low(_clip(3), fps=5, num_samples=2, size=32, seed=0)
    assert out.future_features.dtype == torch.float32 and torch.isfinite(out.future_features).all()
    # Loose tolerance: bf16 keeps 8 mantissa bits; relative error of the features stays within a few percent.
    error = (out.future_features - reference.future_features).norm() / reference.future_features.norm()
    assert error < 0.05, f"bf16 relative error {error:.4f}"


def test_output_types(pipe):
    pictures = pipe(_clip(2), fps=5, num_samples=2, size=32, seed=0, output_type="pil")
    assert isinstance(pictures.image, Image.Image) and pictures.image.width > 64
    arrays = pipe(_clip(2), fps=5, num_samples=2, size=32, seed=0, output_type="np")
    assert isinstance(arrays.future_features, np.ndarray) and arrays.future_features.shape == (2, 3, 4, HIDDEN)
    tensors = pipe(_clip(2), fps=5, num_samples=2, size=32, seed=0, output_type="pt")
    np.testing.assert_array_equal(arrays.future_features, tensors.future_features.numpy())
    latent = pipe(_clip(2), fps=5, num_samples=2, size=32, seed=0, output_type="latent")
    assert latent.future_features is None and latent.future_delta_tokens.shape == (2, 3, HIDDEN)


# ------------------------------------------------------------------ bad inputs


@pytest.mark.parametrize(
    "inputs,kwargs,message",
    [
        (lambda: _clip(0), {"fps": 5}, "at least 1 context frame"),
        (lambda: [Image.new("RGB", (32, 32)), Image.new("RGB", (48, 32))], {"fps": 5}, "same size"),
        (lambda: np.zeros((2, 32, 32, 4), np.uint8), {"fps": 5}, "RGB"),
        (lambda: [Image.new("L", (32, 32))], {"fps": 5}, "RGB"),
        (lambda: torch.zeros(2, 1, 32, 32), {"fps": 5}, "RGB"),
        (lambda: _clip(2).float() / 255, {"fps": 5}, "0..255"),
        (lambda: _clip(2), {"fps": 5, "num_samples": 0}, "num_samples"),
        (lambda: _clip(2), {"fps": 5, "num_samples": -3}, "num_samples"),
        (lambda: _clip(2), {"fps": 5, "future_timestamps": [0.1, 0.3]}, "after the last context time"),
        (lambda: _clip(2), {"fps": 5, "future_timestamps": [0.5, 0.4]}, "strictly increasing"),
        (lambda: _clip(2), {"fps": 5, "output_type": "gif"}, "output_type"),
        (lambda: _clip(2), {"fps": 5, "resize_mode": "stretch"}, "resize_mode"),
        (lambda: _clip(2), {"fps": 5, "size": 40}, "multiple of the patch size"),
        (lambda: _clip(2), {}, "fps= .* or timestamps="),
        (lambda: _clip(2), {"fps": 5, "timestamps": [0, 1]}, "not both"),
        (lambda: _clip(2), {"timestamps": [0.0, 1.0, 2.0]}, "3 values for 2 frames"),
        (lambda: _clip(1), {"timestamps": [0.0]}, "single context frame"),
        (lambda: _clip(2), {"fps": 5, "seed": 1, "generator": torch.Generator()}, "seed or generator"),
        (lambda: _clip(2), {"fps": 5, "num_future_frames": 2, "future_timestamps": [1.0]}, "disagrees"),
    ],
    ids=lambda value: None,
)
def test_bad_inputs_raise_value_error(pipe, inputs, kwargs, message):
    with pytest.raises(ValueError, match=message):
        pipe(inputs(), size=kwargs.pop("size", 32), **kwargs)


def test_bad_video_files_raise_value_error(pipe, tmp_path):
    with pytest.raises(ValueError, match="not found"):
        pipe(str(tmp_path / "missing.mp4"), num_samples=1)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        pipe(str(empty), num_samples=1)
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"this is not a video" * 50)
    with pytest.raises(ValueError):
        pipe(str(corrupt), num_samples=1)


# ------------------------------------------------------------------ loading


def _save(model, directory, heads=None, **settings):
    DeltaWorldPipeline(world_model=model, **(heads or {}), **settings).save_pretrained(directory)
    return directory


def test_pipeline_is_a_diffusion_pipeline_with_declared_components():
    from diffusers import DiffusionPipeline

    assert issubclass(DeltaWorldPipeline, DiffusionPipeline)
    assert set(DeltaWorldPipeline._optional_components) == {"segmentation_head", "depth_head", "rgb_decoder"}
    assert DeltaWorldPipeline.model_cpu_offload_seq.startswith("world_model")


def test_save_and_from_pretrained_round_trip_with_heads_and_settings(model, tmp_path):
    import json

    heads = _heads()
    directory = _save(model, tmp_path / "saved", heads=heads, size=32, resize_mode="resize_square")
    index = json.loads((directory / "model_index.json").read_text())
    assert index["world_model"][1] == "DeltaWorldForForecasting" and index["size"] == 32
    assert index["resize_mode"] == "resize_square" and index["context_frames"] == 4 and index["context_interval"] == 0.2
    assert index["rgb_decoder"] == [None, None]
    for component in ("world_model", "segmentation_head", "depth_head"):
        assert (directory / component / "config.json").is_file()
        assert (directory / component / "model.safetensors").is_file()
    loaded = DeltaWorldPipeline.from_pretrained(directory)
    assert loaded.segmentation_head is not None and loaded.depth_head is not None and loaded.rgb_decoder is None
    out = loaded(_clip(2, 32, 48), fps=5, num_samples=2, seed=0)  # saved settings: 32, resize_square
    assert isinstance(out, DeltaWorldPipelineOutput) and out.context_frames.shape[1:3] == (32, 32)
    reference = DeltaWorldPipeline(world_model=model, **heads)(
        _clip(2, 32, 48), fps=5, num_samples=2, seed=0, size=32, resize_mode="resize_square"
    )
    torch.testing.assert_close(out.future_features, reference.future_features, rtol=0, atol=0)
    assert torch.equal(out.task_maps["segmentation"], reference.task_maps["segmentation"])


def test_from_pretrained_honours_dtype_and_component_overrides(model, tmp_path):
    directory = _save(model, tmp_path / "saved", size=32)
    low = DeltaWorldPipeline.from_pretrained(directory, dtype=torch.bfloat16)
    assert low.world_model.dtype == torch.bfloat16
    out = low(_clip(2), fps=5, num_samples=2, seed=0)
    assert out.future_features.dtype == torch.float32 and torch.isfinite(out.future_features).all()
    heads = _heads()
    with_head = DeltaWorldPipeline.from_pretrained(directory, depth_head=heads["depth_head"])
    assert with_head.depth_head is heads["depth_head"]
    assert with_head(_clip(2), fps=5, num_samples=1, seed=0).task_maps["depth"].shape == (1, 3, 32, 32)


def test_bare_world_model_directory_loads_as_a_pipeline(model, tmp_path):
    model.save_pretrained(tmp_path / "bare")
    pipe = DeltaWorldPipeline.from_pretrained(tmp_path / "bare", size=32)
    out = pipe(_clip(2), fps=5, num_samples=2, seed=0)
    reference = DeltaWorldPipeline(world_model=model)(_clip(2), fps=5, num_samples=2, size=32, seed=0)
    torch.testing.assert_close(out.future_features, reference.future_features, rtol=0, atol=0)
    with pytest.raises(ValueError, match="neither a pipeline"):
        DeltaWorldPipeline.from_pretrained(tmp_path)


def test_hub_id_loads_from_an_offline_cache(model, tmp_path, monkeypatch):
    saved = _save(model, tmp_path / "saved", heads={"depth_head": _heads()["depth_head"]}, size=32)
    repo_id = offline_hub_cache(saved, tmp_path, monkeypatch, repo_id="org/deltaworld-tiny")
    pipe = DeltaWorldPipeline.from_pretrained(repo_id)
    assert pipe.depth_head is not None and pipe.segmentation_head is None
    out = pipe(_clip(2), fps=5, num_samples=2, seed=0)  # size 32 from the saved model_index.json
    reference = DeltaWorldPipeline(world_model=model)(_clip(2), fps=5, num_samples=2, size=32, seed=0)
    torch.testing.assert_close(out.future_features, reference.future_features, rtol=0, atol=0)
    assert out.task_maps["depth"].shape == (2, 3, 32, 32)


def test_hub_id_of_a_bare_model_loads_from_an_offline_cache(model, tmp_path, monkeypatch):
    model.save_pretrained(tmp_path / "bare")
    repo_id = offline_hub_cache(tmp_path / "bare", tmp_path, monkeypatch, repo_id="org/bare-deltaworld")
    pipe = DeltaWorldPipeline.from_pretrained(repo_id, size=32)
    out = pipe(_clip(2), fps=5, num_samples=2, seed=0)
    reference = DeltaWorldPipeline(world_model=model)(_clip(2), fps=5, num_samples=2, size=32, seed=0)
    torch.testing.assert_close(out.future_features, reference.future_features, rtol=0, atol=0)


# ------------------------------------------------------------------ callbacks, generators, latent output


def test_callback_runs_once_per_rollout_step_with_its_timestamp(pipe):
    calls = []

    def callback(pipeline, step, timestamp, callback_kwargs):
        tokens, features = callback_kwargs["delta_tokens"], callback_kwargs["features"]
        calls.append((step, round(timestamp, 6), tuple(tokens.shape), tuple(features.shape)))

    pipe(_clip(3), fps=5, num_samples=2, num_future_frames=3, size=32, seed=0, callback_on_step_end=callback,
         callback_on_step_end_tensor_inputs=["delta_tokens", "features"])  # fmt: skip
    assert [call[:2] for call in calls] == [(0, 0.6), (1, 0.8), (2, 1.0)]
    assert all(call[2] == (2, HIDDEN) and call[3] == (2, 4, HIDDEN) for call in calls)
    with pytest.raises(ValueError, match="callback_on_step_end_tensor_inputs"):
        pipe(_clip(3), fps=5, num_samples=1, size=32, callback_on_step_end=callback,
             callback_on_step_end_tensor_inputs=["latents"])  # fmt: skip


def test_a_list_of_generators_makes_each_clip_independent_of_the_others(pipe):
    clips = [_clip(3, seed=0), _clip(3, seed=1)]
    generators = [torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)]
    batch = pipe(clips, fps=5, num_samples=3, size=32, generator=generators)
    other_first = pipe([_clip(3, seed=4), clips[1]], fps=5, num_samples=3, size=32,
                       generator=[torch.Generator().manual_seed(9), torch.Generator().manual_seed(2)])  # fmt: skip
    alone = pipe(clips[1], fps=5, num_samples=3, size=32, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(batch[1].future_features, alone.future_features, rtol=0, atol=1e-5)
    torch.testing.assert_close(other_first[1].future_features, alone.future_features, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="one per clip"):
        pipe(clips, fps=5, num_samples=1, size=32, generator=[torch.Generator()])


def test_latent_output_skips_the_decoder_and_decoding_later_equals_decoding_at_once(pipe, model):
    decoder_calls = []
    original_decode = model.tokenizer.decode

    def counting_decode(*args, **kwargs):
        decoder_calls.append(1)
        return original_decode(*args, **kwargs)

    model.tokenizer.decode = counting_decode
    try:
        latent = pipe(_clip(3), fps=5, num_samples=4, size=32, seed=5, output_type="latent")
        assert decoder_calls == []
    finally:
        del model.tokenizer.decode
    assert latent.future_features is None and latent.future_delta_tokens.shape == (4, 3, HIDDEN)
    at_once = pipe(_clip(3), fps=5, num_samples=4, size=32, seed=5)
    torch.testing.assert_close(latent.future_delta_tokens, at_once.future_delta_tokens, rtol=0, atol=0)
    later = pipe.decode(latent)
    torch.testing.assert_close(later.future_features, at_once.future_features, rtol=0, atol=1e-6)
    chosen = pipe.decode(latent, sample_indices=[3, 1])
    torch.testing.assert_close(chosen.future_features, at_once.future_features[[3, 1]], rtol=0, atol=1e-6)
    torch.testing.assert_close(chosen.mean_future_features, at_once.future_features[[3, 1]].mean(0), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="sample_indices"):
        pipe.decode(latent, sample_indices=[4])


@pytest.mark.parametrize("selection", ["k_medoids", "farthest_point"])
def test_select_then_decode_returns_distinct_futures_drawn_among_the_candidates(pipe, selection):
    from deltatok_hf.pipelines import select_candidates

    out = pipe(_clip(3), fps=5, num_samples=3, num_candidates=16, candidate_selection=selection, size=32, seed=2)
    assert out.future_features.shape == (3, 3, 4, HIDDEN)
    assert len(set(out.candidate_indices.tolist())) == 3
    everything = pipe(_clip(3), fps=5, num_samples=16, size=32, seed=2)  # the same 16 draws, all decoded
    picked = out.candidate_indices
    torch.testing.assert_close(out.future_delta_tokens, everything.future_delta_tokens[picked], rtol=0, atol=0)
    torch.testing.assert_close(out.future_features, everything.future_features[picked], rtol=0, atol=1e-6)
    torch.testing.assert_close(out.noise, everything.noise[picked], rtol=0, atol=0)
    # The choice is the selection method's over the whole rollout in token space, with its weights.
    expected, weights = select_candidates(everything.future_delta_tokens.flatten(1)[None], 3, selection)
    assert out.candidate_indices.tolist() == expected[0].tolist()
    torch.testing.assert_close(out.candidate_weights, weights[0])
    assert out.candidate_weights.sum().item() == pytest.approx(1.0)
    assert everything.candidate_weights is None
    # The mean forecast counts each kept future for the share of the candidates it stands for.
    weighted = (out.future_features * out.candidate_weights[:, None, None, None]).sum(0)
    torch.testing.assert_close(out.mean_future_features, weighted, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="num_candidates"):
        pipe(_clip(3), fps=5, num_samples=4, num_candidates=2, size=32)
    with pytest.raises(ValueError, match="candidate_selection must be one of"):
        pipe(_clip(3), fps=5, num_samples=2, num_candidates=8, candidate_selection="random", size=32)


def test_the_mean_of_select_then_decode_is_weighted_and_follows_decoding_a_subset():
    # Scales large enough that the samples' features differ well above rounding (the tiny preset's random init
    # decodes every sample to nearly the same features).
    torch.manual_seed(0)
    config = DeltaWorldConfig.tiny(noise_std=1.0, layer_scale_init=1.0, tokenizer_kwargs={"layer_scale_init": 1.0})
    pipe = DeltaWorldPipeline(world_model=DeltaWorldForForecasting(config).eval())
    out = pipe(_clip(3), fps=5, num_samples=3, num_candidates=16, size=32, seed=2)
    weights = out.candidate_weights
    assert not torch.allclose(weights, torch.full_like(weights, 1 / 3))  # else weighted and plain means would agree
    weighted = (out.future_features * weights[:, None, None, None]).sum(0)
    torch.testing.assert_close(out.mean_future_features, weighted, rtol=0, atol=1e-6)
    spread = (out.future_features - out.future_features.mean(0)).abs().max()
    assert (out.mean_future_features - out.future_features.mean(0)).abs().max() > 0.05 * spread
    # Decoding again a subset, in another order: every per-sample field follows, the mean is renormalised over it.
    again = pipe.decode(out, sample_indices=[2, 0])
    torch.testing.assert_close(again.future_features, out.future_features[[2, 0]], rtol=0, atol=1e-6)
    assert again.candidate_indices.tolist() == out.candidate_indices[[2, 0]].tolist()
    torch.testing.assert_close(again.candidate_weights, weights[[2, 0]], rtol=0, atol=0)
    torch.testing.assert_close(again.noise, out.noise[[2, 0]], rtol=0, atol=0)
    share = weights[[2, 0]] / weights[[2, 0]].sum()
    expected = out.future_features[2] * share[0] + out.future_features[0] * share[1]
    torch.testing.assert_close(again.mean_future_features, expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(pipe.decode(out).mean_future_features, out.mean_future_features, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="candidate_weights must be finite, non-negative"):
        pipe.decode(dataclasses.replace(out, candidate_weights=torch.zeros(3)))
    with pytest.raises(ValueError, match=r"candidate_weights must have shape \(3,\)"):
        pipe.decode(dataclasses.replace(out, candidate_weights=weights[:2]))
    # Choosing in token space without decoding: the same choice, decoded later to the same forecast.
    latent = pipe(_clip(3), fps=5, num_samples=3, num_candidates=16, size=32, seed=2, output_type="latent")
    assert latent.future_features is None and latent.mean_future_features is None
    assert latent.candidate_indices.tolist() == out.candidate_indices.tolist()
    torch.testing.assert_close(latent.candidate_weights, weights, rtol=0, atol=0)
    later = pipe.decode(latent)
    torch.testing.assert_close(later.future_features, out.future_features, rtol=0, atol=1e-6)
    torch.testing.assert_close(later.mean_future_features, out.mean_future_features, rtol=0, atol=1e-6)


def test_return_dict_false_gives_tuples(pipe):
    out = pipe(_clip(2), fps=5, num_samples=2, size=32, seed=0, return_dict=False)
    assert isinstance(out, tuple) and out[0].shape == (2, 3, 4, HIDDEN)


def test_video_file_context_defaults_to_four_frames_two_tenths_apart(pipe):
    from deltatok_hf.data import demo_clip_path

    out = pipe(str(demo_clip_path()), num_samples=2, size=32, resize_mode="resize_square", seed=0)
    times = out.context_timestamps.numpy()
    assert len(times) == 4
    np.testing.assert_allclose(np.diff(times), 0.2, atol=0.021)  # nearest real frames of a 25 fps clip
    np.testing.assert_allclose(out.future_timestamps.numpy() - times[-1], [0.2, 0.4, 0.6], atol=0.03)
    with pytest.raises(ValueError, match="too short"):
        pipe(str(demo_clip_path()), max_context_frames=40, num_samples=1, size=32, resize_mode="resize_square")
    with pytest.raises(ValueError, match="context_interval"):
        pipe(_clip(2), fps=5, context_interval=0.2, num_samples=1, size=32)


# ------------------------------------------------------------------ RGB decoder component


def _rgb_decoder(model):
    from deltatok_hf.models.rgb_decoder import DeltaTokRGBDecoder, DeltaTokRGBDecoderConfig

    torch.manual_seed(2)
    config = DeltaTokRGBDecoderConfig.tiny(feature_size=HIDDEN, image_size=32)
    decoder = DeltaTokRGBDecoder(config)
    decoder.copy_feature_norm_from(model)
    return decoder.eval()


def test_rgb_decoder_component_gives_future_frames_in_every_output_type(model, tmp_path):
    decoder = _rgb_decoder(model)
    pipe = DeltaWorldPipeline(world_model=model, rgb_decoder=decoder, size=32)
    out = pipe(_clip(3), fps=5, num_samples=2, seed=0)
    assert out.future_frames.shape == (2, 3, 32, 32, 3) and out.future_frames.dtype == torch.uint8
    assert out.mean_future_frames.shape == (3, 32, 32, 3)
    expected = decoder(out.future_features[1, 2][None], grid_size=(2, 2)).pixel_values[0]  # (3, 32, 32) on 0..1
    expected = (expected * 255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0)
    assert (out.future_frames[1, 2].int() - expected.int()).abs().max() <= 1
    pictures = pipe(_clip(3), fps=5, num_samples=2, seed=0, output_type="pil")
    assert len(pictures.future_frames) == 2 and all(isinstance(frame, Image.Image) for frame in pictures.future_frames[0])
    arrays = pipe(_clip(3), fps=5, num_samples=2, seed=0, output_type="np")
    assert isinstance(arrays.future_frames, np.ndarray) and arrays.future_frames.shape == (2, 3, 32, 32, 3)
    later = pipe.decode(pipe(_clip(3), fps=5, num_samples=2, seed=0, output_type="latent"))
    assert torch.equal(later.future_frames, out.future_frames)
    pipe.save_pretrained(tmp_path / "with_rgb")
    loaded = DeltaWorldPipeline.from_pretrained(tmp_path / "with_rgb")
    assert torch.equal(loaded(_clip(3), fps=5, num_samples=2, seed=0).future_frames, out.future_frames)
