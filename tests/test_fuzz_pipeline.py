"""Property-based fuzzing of the video processor's and the pipeline's public inputs (hypothesis, bounded): every input
either works, giving finite outputs of the documented shapes, or raises ValueError / TypeError with a message."""

from __future__ import annotations

import numpy as np
import pytest
import torch

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from deltatok_hf import DeltaWorldConfig, DeltaWorldForForecasting, DeltaWorldPipeline  # noqa: E402
from deltatok_hf.data.video_processor import DeltaWorldVideoProcessor  # noqa: E402

HIDDEN = 64
FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


@pytest.fixture(scope="module")
def pipe():
    torch.manual_seed(0)
    return DeltaWorldPipeline(world_model=DeltaWorldForForecasting(DeltaWorldConfig.tiny()), size=32)


@st.composite
def clips(draw, valid: bool = False):
    """Clips of every form; unless `valid`, with odd shapes, dtypes and values among the ordinary ones."""
    num_frames = draw(st.integers(1 if valid else 0, 4))
    sizes = [(32, 32), (32, 48), (48, 32), (16, 16), (20, 70), (1, 1), (30, 45)] + ([] if valid else [(0, 32)])
    height, width = draw(st.sampled_from(sizes))
    channels = draw(st.sampled_from([3] if valid else [3, 1, 4]))
    dtype = draw(st.sampled_from(["uint8", "float32", "float64"] + ([] if valid else ["int64", "bool", "float16"])))
    special = None if valid else draw(st.sampled_from([None, "nan", "inf", "negative", "unit", "huge"]))
    values = np.random.default_rng(draw(st.integers(0, 2**16))).integers(0, 256, (num_frames, height, width, channels))
    array = values.astype(dtype)
    if array.size and special is not None:
        array = array.astype(np.float32)
        array.flat[0] = {"nan": np.nan, "inf": np.inf, "negative": -1.0, "unit": 0.5, "huge": 1e6}[special]
        if special == "unit":
            array /= 255.0
    form = draw(st.sampled_from(["numpy", "tensor", "list", "pil"]))
    if form == "tensor":
        return torch.from_numpy(np.ascontiguousarray(array)).permute(0, 3, 1, 2)
    if form == "list":
        return [frame for frame in array]
    if form == "pil" and array.dtype == np.uint8 and channels == 3 and height and width:
        from PIL import Image

        return [Image.fromarray(frame) for frame in array]
    return array


def _times(low, high):
    """Floats in [low, high] with NaN and infinities mixed in."""
    return st.one_of(st.floats(low, high), st.sampled_from([float("nan"), float("inf"), -float("inf")]))


timings = st.fixed_dictionaries(
    {},
    optional={
        "fps": st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-2, 30)),
        "timestamps": st.lists(_times(-5, 5), min_size=0, max_size=5),
        "future_timestamps": st.lists(_times(-5, 10), min_size=0, max_size=3),
        "num_future_frames": st.integers(-1, 3),
        "frame_interval": _times(-1, 1),
        "max_context_frames": st.integers(-1, 5),
    },
)


def _assert_documented_shapes(output, hidden=HIDDEN):
    samples, future = output.future_features.shape[:2]
    assert output.future_features.shape[-1] == hidden and output.future_features.ndim == 4
    assert output.future_delta_tokens.shape == (samples, future, hidden)
    assert output.mean_future_features.shape == output.future_features.shape[1:]
    assert output.context_features.shape[0] == output.context_timestamps.shape[0]
    assert output.future_timestamps.shape == (future,)
    for name in ("future_features", "future_delta_tokens", "context_features"):
        assert torch.isfinite(getattr(output, name)).all(), name


def _explained(error: Exception) -> bool:
    return isinstance(error, (ValueError, TypeError)) and len(str(error)) > 10


@FUZZ
@given(
    clip=clips(valid=True),
    start=st.floats(-3, 3),
    steps=st.lists(st.floats(0.01, 2), min_size=4, max_size=4),
    num_samples=st.integers(1, 3),
    future=st.lists(st.floats(0.01, 2), min_size=1, max_size=3),
    resize_mode=st.sampled_from(["square_crops", "resize_square"]),
)
def test_valid_inputs_always_give_finite_outputs_of_the_documented_shapes(pipe, clip, start, steps, num_samples, future, resize_mode):
    num_frames = len(clip)
    times = np.cumsum([start] + steps)[:num_frames].tolist()
    future_times = (times[-1] + np.cumsum(future)).tolist()
    result = pipe(clip, timestamps=times, future_timestamps=future_times, num_samples=num_samples, seed=0, resize_mode=resize_mode)
    for output in result if isinstance(result, list) else [result]:
        _assert_documented_shapes(output)
        assert output.future_features.shape[:2] == (num_samples, len(future))
        assert output.context_features.shape[0] == num_frames


@FUZZ
@given(clip=clips(), timing=timings, num_samples=st.integers(-1, 3))
def test_pipeline_answers_every_input_with_an_output_or_a_clear_error(pipe, clip, timing, num_samples):
    try:
        result = pipe(clip, num_samples=num_samples, seed=0, **timing)
    except Exception as error:  # noqa: BLE001 (the property: only explained ValueError / TypeError)
        assert _explained(error), f"unexplained {type(error).__name__}: {error!r}"
        return
    for output in result if isinstance(result, list) else [result]:
        _assert_documented_shapes(output)


@FUZZ
@given(
    clip=clips(),
    timing=timings,
    size=st.sampled_from([16, 32, 48, 40, 0, -16]),
    resize_mode=st.sampled_from(["square_crops", "resize_square", "none", "crop"]),
)
def test_video_processor_answers_every_input_with_views_or_a_clear_error(clip, timing, size, resize_mode):
    try:
        processor = DeltaWorldVideoProcessor(size=size, resize_mode=resize_mode)
        timing = {("context_frames" if key == "max_context_frames" else key): value for key, value in timing.items()}
        prepared = processor.preprocess(clip, **timing)
    except Exception as error:  # noqa: BLE001
        assert _explained(error), f"unexplained {type(error).__name__}: {error!r}"
        return
    views = prepared.views
    assert views.ndim == 5 and views.shape[2] == 3 and views.shape[1] == prepared.context_timestamps.shape[0]
    assert views.shape[-1] % 16 == 0 and views.shape[-2] % 16 == 0
    assert torch.isfinite(views.float()).all() and float(views.float().min()) >= 0 and float(views.float().max()) <= 255
    assert bool((prepared.future_timestamps > prepared.context_timestamps[-1]).all())


@FUZZ
@given(batch=st.lists(clips(), min_size=1, max_size=3), seeds=st.lists(st.integers(0, 5), min_size=1, max_size=3))
def test_batches_and_generator_lists_answer_with_outputs_or_a_clear_error(pipe, batch, seeds):
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    try:
        result = pipe(batch, fps=5, num_samples=2, generator=generators)
    except Exception as error:  # noqa: BLE001
        assert _explained(error), f"unexplained {type(error).__name__}: {error!r}"
        return
    assert len(result) == len(batch) == len(seeds)
