"""Property-based fuzzing of the models' public inputs (hypothesis, bounded for CI).

Every drawn input must either work, giving finite outputs of the documented shapes, or raise `ValueError` /
`TypeError` with a message; any other exception (an unexplained crash) fails the test. Tiny random-weight models: this
proves input handling, not forecast quality. Runs are derandomized (the same examples every run) and bounded by
`max_examples`, so the time in CI is fixed.
"""

from __future__ import annotations

import functools

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from deltatok_hf import DeltaTokConfig, DeltaTokModel, DeltaWorldConfig, DeltaWorldForForecasting

FUZZ_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
HIDDEN_SIZE = 64  # the tiny presets: tokenizer and predictor both 64 wide, 16-pixel patches


@functools.cache
def tiny_world() -> DeltaWorldForForecasting:
    torch.manual_seed(0)
    return DeltaWorldForForecasting(DeltaWorldConfig.tiny(num_samples_train=4)).eval()


@functools.cache
def tiny_tokenizer() -> DeltaTokModel:
    torch.manual_seed(0)
    return DeltaTokModel(DeltaTokConfig.tiny()).eval()


def assert_explained(error: Exception) -> None:
    """An accepted failure: ValueError / TypeError carrying a message."""
    if not isinstance(error, (ValueError, TypeError)):
        raise AssertionError(f"unexplained {type(error).__name__}: {error}") from error
    assert str(error).strip(), f"{type(error).__name__} without a message"
    event(f"raised {type(error).__name__}")  # `pytest --hypothesis-show-statistics` shows how inputs were split


def assert_finite(name: str, tensor: torch.Tensor) -> None:
    assert torch.isfinite(tensor).all(), f"{name} is not finite"
    event("worked")


# ------------------------------------------------------------------------------------------------- strategies
#
# Each example is a valid input drawn at random (shapes, float dtypes, value scales, spacing of the timestamps, batch
# forms), then, half of the time, broken in exactly one way, so that both the working path and every rejection are hit.

FLOAT_DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
BAD_DTYPES = [torch.int64, torch.uint8, torch.bool, torch.complex64]
SPECIAL_VALUES = [float("nan"), float("inf"), float("-inf")]


def corruption(draw, *names):
    return draw(st.sampled_from([None] * len(names) + list(names)), label="corruption")


@st.composite
def tensors(draw, shape, dtypes=FLOAT_DTYPES):
    """Finite values of a drawn scale (up to 1e3, beyond any real feature or token) in a drawn float dtype."""
    seed = draw(st.integers(0, 2**16))
    scale = draw(st.sampled_from([0.0, 1e-3, 1.0, 1e3]))
    values = torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * scale
    return values.to(draw(st.sampled_from(dtypes)))


def poisoned(draw, tensor: torch.Tensor) -> torch.Tensor:
    tensor = tensor.clone().float()
    if tensor.numel():
        tensor.view(-1)[draw(st.integers(0, tensor.numel() - 1))] = draw(st.sampled_from(SPECIAL_VALUES))
    return tensor


def as_bad_dtype(draw, tensor: torch.Tensor):
    dtype = draw(st.sampled_from(BAD_DTYPES))
    return tensor > 0 if dtype is torch.bool else tensor.to(dtype)


@st.composite
def increasing_seconds(draw, length: int, start_after: float | None = None):
    steps = draw(st.lists(st.floats(1e-3, 10.0), min_size=length, max_size=length))
    start = draw(st.floats(-100.0, 100.0)) if start_after is None else start_after
    return torch.tensor([start + sum(steps[: index + 1]) for index in range(length)], dtype=torch.float64).float()


def broken_seconds(draw, row: torch.Tensor):
    """One way to break a row of timestamps."""
    kind = draw(st.sampled_from(["reversed", "repeated", "special", "text", "complex", "wrong_length", "3d"]))
    if kind == "reversed" and row.numel() > 1:
        return row.flip(0)
    if kind == "repeated" and row.numel() > 1:
        return torch.cat((row[:1], row[:1], row[2:]))
    if kind == "special" and row.numel():
        row = row.clone()
        row[draw(st.integers(0, row.numel() - 1))] = draw(st.sampled_from(SPECIAL_VALUES))
        return row
    if kind == "text":
        return ["t"] * row.numel()
    if kind == "complex":
        return row.to(torch.complex64)
    if kind == "3d":
        return row[None, None]
    return torch.cat((row, row[-1:] + 1.0))


# ------------------------------------------------------------------------------------------------- DeltaWorld


@FUZZ_SETTINGS
@given(data=st.data())
def test_generate_from_delta_tokens_works_or_raises_explained(data):
    model = tiny_world()
    draw = data.draw
    batch_size = draw(st.integers(1, 2), label="batch_size")
    num_context = draw(st.integers(1, 3), label="num_context")
    num_future = draw(st.integers(1, 3), label="num_future")
    decode = draw(st.booleans(), label="decode")
    grid_size = draw(st.sampled_from([(2, 2), (1, 4), (2, 3)]), label="grid_size")
    num_patches = grid_size[0] * grid_size[1]
    delta_tokens = draw(tensors((batch_size, num_context, HIDDEN_SIZE)), label="delta_tokens")
    last_features = draw(tensors((batch_size, num_patches, HIDDEN_SIZE)), label="last_features")
    timestamps = draw(increasing_seconds(num_context), label="timestamps")
    future_timestamps = draw(increasing_seconds(num_future, start_after=float(timestamps[-1])), label="future")
    if draw(st.booleans(), label="per_clip_timestamps"):
        timestamps, future_timestamps = timestamps.expand(batch_size, -1), future_timestamps.expand(batch_size, -1)
    num_samples = draw(st.integers(1, 3), label="num_samples")
    use_noise = draw(st.booleans(), label="explicit_noise")
    noise = draw(tensors((batch_size, num_samples, num_future, model.config.hidden_size)), label="noise")
    if not use_noise:
        noise = None
    pass_grid = num_patches != 4 or draw(st.booleans(), label="pass_grid")  # 4 patches: a square grid is inferred

    broken = corruption(
        draw, "token_nan", "token_dtype", "token_width", "token_list", "empty_batch", "empty_context",
        "features_nan", "features_width", "features_batch", "missing_features", "grid_mismatch", "grid_text",
        "timestamps", "future_timestamps", "future_before_context", "no_future", "num_samples", "noise_shape",
        "noise_nan",
    )
    if broken == "token_nan":
        delta_tokens = poisoned(draw, delta_tokens)
    elif broken == "token_dtype":
        delta_tokens = as_bad_dtype(draw, delta_tokens)
    elif broken == "token_width":
        delta_tokens = delta_tokens[..., :32]
    elif broken == "token_list":
        delta_tokens = delta_tokens.tolist()
    elif broken == "empty_batch":
        delta_tokens = delta_tokens[:0]
    elif broken == "empty_context":
        delta_tokens = delta_tokens[:, :0]
    elif broken == "features_nan" and decode:
        last_features = poisoned(draw, last_features)
    elif broken == "features_width" and decode:
        last_features = last_features[..., :16]
    elif broken == "features_batch" and decode:
        last_features = torch.cat((last_features, last_features))
    elif broken == "missing_features" and decode:
        last_features = None
    elif broken == "grid_mismatch" and decode:
        grid_size, pass_grid = (grid_size[0] + 1, grid_size[1]), True
    elif broken == "grid_text" and decode:
        grid_size, pass_grid = "2x2", True
    elif broken == "timestamps":
        timestamps = broken_seconds(draw, timestamps.reshape(-1)[:num_context])
    elif broken == "future_timestamps":
        future_timestamps = broken_seconds(draw, future_timestamps.reshape(-1)[:num_future])
    elif broken == "future_before_context":
        future_timestamps = future_timestamps - 1e4
    elif broken == "no_future":
        future_timestamps = torch.zeros(0)
    elif broken == "num_samples":
        num_samples = draw(st.sampled_from([0, -1, 2.0, True, "3"]))
    elif broken == "noise_shape":
        noise = torch.zeros(batch_size, num_samples, num_future + 1, model.config.hidden_size)
    elif broken == "noise_nan":
        noise = poisoned(draw, torch.zeros(batch_size, num_samples, num_future, model.config.hidden_size))
    else:
        broken = None
    try:
        output = model.generate(
            delta_tokens=delta_tokens,
            timestamps=timestamps,
            future_timestamps=future_timestamps,
            num_samples=num_samples,
            noise=noise,
            last_features=last_features,
            grid_size=grid_size if pass_grid else None,
            decode=decode,
            generator=torch.Generator().manual_seed(0),
        )
    except Exception as error:  # noqa: BLE001 - the property is about which exceptions escape
        assert_explained(error)
        assert broken is not None, f"a valid input was rejected: {error}"
        return
    assert output.future_delta_tokens.shape == (batch_size, num_samples, num_future, HIDDEN_SIZE)
    assert output.noise.shape == (batch_size, num_samples, num_future, model.config.hidden_size)
    assert_finite("future_delta_tokens", output.future_delta_tokens)
    if decode:
        assert output.future_features.shape == (batch_size, num_samples, num_future, num_patches, HIDDEN_SIZE)
        assert_finite("future_features", output.future_features)
    assert broken is None, f"broken input ({broken}) was accepted"


@FUZZ_SETTINGS
@given(data=st.data())
def test_training_forward_works_or_raises_explained(data):
    model = tiny_world()
    draw = data.draw
    batch_size = draw(st.integers(1, 2), label="batch_size")
    num_frames = draw(st.integers(2, 4), label="num_frames")
    delta_tokens = draw(tensors((batch_size, num_frames, HIDDEN_SIZE)), label="delta_tokens")
    timestamps = draw(increasing_seconds(num_frames), label="timestamps")
    num_samples_train = draw(st.one_of(st.none(), st.integers(1, 5)), label="K")
    broken = corruption(
        draw, "token_nan", "token_dtype", "token_width", "token_list", "one_frame", "empty_batch", "timestamps", "K"
    )
    if broken == "token_nan":
        delta_tokens = poisoned(draw, delta_tokens)
    elif broken == "token_dtype":
        delta_tokens = as_bad_dtype(draw, delta_tokens)
    elif broken == "token_width":
        delta_tokens = delta_tokens[..., :48]
    elif broken == "token_list":
        delta_tokens = delta_tokens.tolist()
    elif broken == "one_frame":
        delta_tokens, timestamps = delta_tokens[:, :1], timestamps[:1]
    elif broken == "empty_batch":
        delta_tokens = delta_tokens[:0]
    elif broken == "timestamps":
        timestamps = broken_seconds(draw, timestamps)
    elif broken == "K":
        num_samples_train = draw(st.sampled_from([0, -1, 1.5, True]))
    try:
        output = model(delta_tokens=delta_tokens, timestamps=timestamps, num_samples_train=num_samples_train)
    except Exception as error:  # noqa: BLE001
        assert_explained(error)
        assert broken is not None, f"a valid input was rejected: {error}"
        return
    candidates = model.config.num_samples_train if num_samples_train is None else num_samples_train
    assert output.predicted_delta_tokens.shape == (batch_size, num_frames - 1, HIDDEN_SIZE)
    assert output.candidate_losses.shape == (batch_size, num_frames - 1, candidates)
    assert output.best_candidate_indices.shape == (batch_size, num_frames - 1)
    assert_finite("loss", output.loss)
    assert_finite("predicted_delta_tokens", output.predicted_delta_tokens)
    assert broken is None, f"broken input ({broken}) was accepted"


@st.composite
def frame_batches(draw, num_frames_range=(1, 2)):
    """`(frames, broken)`: valid RGB clips (uint8 or float in 0..255), or broken in one way."""
    batch_size = draw(st.integers(1, 2))
    num_frames = draw(st.integers(*num_frames_range))
    height, width = draw(st.sampled_from([(32, 32), (16, 48), (48, 16)]))
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    frames = torch.randint(0, 256, (batch_size, num_frames, 3, height, width), generator=generator)
    frames = frames.to(draw(st.sampled_from([torch.uint8, torch.float32, torch.float16, torch.bfloat16, torch.float64])))
    broken = corruption(draw, "out_of_range", "poisoned", "dtype", "numpy", "channels", "size", "empty")
    if broken == "out_of_range":
        frames = frames.float() * draw(st.sampled_from([-1.0, 4.0, 1e30]))
        frames.view(-1)[0] = 300.0 if frames.max() <= 255 and frames.min() >= 0 else frames.view(-1)[0]
    elif broken == "poisoned":
        frames = poisoned(draw, frames)
    elif broken == "dtype":
        frames = frames.bool() if draw(st.booleans()) else frames.to(torch.complex64)
    elif broken == "numpy":
        frames = frames.float().numpy()
    elif broken == "channels":
        frames = frames[:, :, :1]
    elif broken == "size":
        frames = frames[..., : height - 2, :]  # not a multiple of the 16-pixel patch
    elif broken == "empty":
        frames = frames[:, :0] if draw(st.booleans()) else frames[:0]
    return frames, broken


@settings(FUZZ_SETTINGS, max_examples=25)
@given(clip=frame_batches(), num_samples=st.integers(1, 2), future_step=st.floats(1e-3, 5.0))
def test_generate_from_frames_works_or_raises_explained(clip, num_samples, future_step):
    model = tiny_world()
    frames, broken = clip
    num_frames = frames.shape[1]
    timestamps = torch.arange(num_frames, dtype=torch.float32) * 0.25
    future_timestamps = [max(num_frames - 1, 0) * 0.25 + future_step]
    try:
        output = model.generate(
            frames=frames, timestamps=timestamps, future_timestamps=future_timestamps, num_samples=num_samples
        )
    except Exception as error:  # noqa: BLE001
        assert_explained(error)
        assert broken is not None, f"a valid input was rejected: {error}"
        return
    batch_size, _, _, height, width = frames.shape
    num_patches = (height // 16) * (width // 16)
    assert output.future_features.shape == (batch_size, num_samples, 1, num_patches, HIDDEN_SIZE)
    assert output.context_features.shape == (batch_size, num_frames, num_patches, HIDDEN_SIZE)
    assert_finite("future_features", output.future_features)
    assert broken is None, f"broken input ({broken}) was accepted"


# ------------------------------------------------------------------------------------------------- DeltaTok


@FUZZ_SETTINGS
@given(data=st.data())
def test_tokenizer_encode_decode_work_or_raise_explained(data):
    tokenizer = tiny_tokenizer()
    draw = data.draw
    leading = tuple(draw(st.lists(st.integers(1, 2), min_size=1, max_size=2), label="leading_shape"))
    grid_size = draw(st.sampled_from([(2, 2), (1, 4), (2, 3)]), label="grid_size")
    num_patches = grid_size[0] * grid_size[1]
    previous = draw(tensors((*leading, num_patches, HIDDEN_SIZE), dtypes=[torch.float32]), label="previous")
    current = draw(tensors((*leading, num_patches, HIDDEN_SIZE), dtypes=[torch.float32]), label="current")
    pass_grid = num_patches != 4 or draw(st.booleans(), label="pass_grid")
    broken = corruption(draw, "nan", "dtype", "width", "no_previous", "previous_shape", "grid", "empty", "list")
    if broken == "nan":
        current = poisoned(draw, current)
    elif broken == "dtype":
        current = as_bad_dtype(draw, current)
    elif broken == "width":
        previous, current = previous[..., :16], current[..., :16]
    elif broken == "no_previous":
        previous = None
    elif broken == "previous_shape":
        previous = previous[..., :1, :]
    elif broken == "grid":
        grid_size, pass_grid = (grid_size[0] + 1, grid_size[1]), True
    elif broken == "empty":
        previous, current = previous[..., :0, :], current[..., :0, :]
    elif broken == "list":
        current = current.tolist()
    grid = grid_size if pass_grid else None
    try:
        tokens = tokenizer.encode(previous, current, grid_size=grid)
        reconstruction = tokenizer.decode(tokens, previous, grid_size=grid)
    except Exception as error:  # noqa: BLE001
        assert_explained(error)
        assert broken is not None, f"a valid input was rejected: {error}"
        return
    assert tokens.shape == (*leading, HIDDEN_SIZE)
    assert reconstruction.shape == (*leading, num_patches, HIDDEN_SIZE)
    assert_finite("delta_tokens", tokens)
    assert_finite("reconstruction", reconstruction)
    assert broken is None, f"broken input ({broken}) was accepted"


@settings(FUZZ_SETTINGS, max_examples=25)
@given(data=st.data())
def test_tokenizer_forward_works_or_raises_explained(data):
    tokenizer = tiny_tokenizer()
    draw = data.draw
    grid_size = None
    if draw(st.booleans(), label="use_frames"):
        frames, broken = draw(frame_batches(num_frames_range=(1, 3)), label="frames")
        inputs = {"frames": frames}
        batch_size, num_patches = frames.shape[0], (frames.shape[-2] // 16) * (frames.shape[-1] // 16)
    else:
        batch_size, num_frames = draw(st.integers(1, 2)), draw(st.integers(1, 3))
        grid_size = draw(st.sampled_from([(2, 2), (2, 3)]), label="grid_size")
        num_patches = grid_size[0] * grid_size[1]
        features = draw(tensors((batch_size, num_frames, num_patches, HIDDEN_SIZE), dtypes=[torch.float32]))
        broken = corruption(draw, "nan", "no_frames", "grid")
        if broken == "nan":
            features = poisoned(draw, features)
        elif broken == "no_frames":
            features = features[:, :0]
        elif broken == "grid":
            grid_size = (3, 3)
        inputs = {"features": features}
    try:
        output = tokenizer(**inputs, grid_size=grid_size)
    except Exception as error:  # noqa: BLE001
        assert_explained(error)
        assert broken is not None, f"a valid input was rejected: {error}"
        return
    assert output.reconstruction.shape == (batch_size, num_patches, HIDDEN_SIZE)
    assert output.delta_tokens.shape == (batch_size, HIDDEN_SIZE)
    assert_finite("loss", output.loss)
    assert_finite("reconstruction", output.reconstruction)
    assert broken is None, f"broken input ({broken}) was accepted"


def test_fuzz_harness_rejects_an_unexplained_crash():
    # The property above is only as good as this check: anything but ValueError/TypeError must fail it.
    with pytest.raises(AssertionError, match="unexplained RuntimeError"):
        assert_explained(RuntimeError("shape mismatch deep inside"))
    with pytest.raises(AssertionError, match="without a message"):
        assert_explained(ValueError(""))
