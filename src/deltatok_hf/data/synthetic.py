"""Synthetic video datasets whose future is genuinely multimodal.

- `SyntheticMultimodalMotion`: a bright disc on a dark background moves at constant velocity during the context
  frames, then turns into one of `num_modes` fixed directions, chosen uniformly at random and independently of the
  context.
- `ForkWorld`: a colourful disc on a textured background drives steadily towards a junction, then takes one of
  `num_modes` equally likely branches (left / straight / right for three modes), with branches at least a patch
  apart at 64 x 64 px. `read_fork_mode` reads the branch back from an RGB frame (also a blurry decoded one), so mode
  coverage can be scored on pixels without the renderer.

A deterministic predictor can at best forecast the average of the modes; a Best-of-Many trained predictor (paper,
Sec. 3.3) should cover every mode with some of its samples. Each item carries the rendered future of every mode so that
mode coverage can be scored without a model of the renderer.
"""

from __future__ import annotations

import colorsys
import math

import numpy as np
import torch
from torch.utils.data import Dataset

from ..metrics.functional import mode_coverage


def disc_coverage(centres: np.ndarray, size: int, radius: float) -> np.ndarray:
    """Fraction of each pixel covered by a disc, `(num_frames, 2)` centres `(x, y)` -> `(num_frames, size, size)`.

    The edge is anti-aliased over one pixel, so sub-pixel motion changes the pictures. numpy: these arrays are tiny,
    and torch's intra-op threads only add overhead here.
    """
    coordinates = np.arange(size, dtype=np.float32)
    delta_x = coordinates[None, None, :] - centres[:, 0, None, None]  # (num_frames, 1, size)
    delta_y = coordinates[None, :, None] - centres[:, 1, None, None]  # (num_frames, size, 1)
    distance = np.sqrt(delta_x**2 + delta_y**2)  # (num_frames, size, size)
    return np.clip(radius + 0.5 - distance, 0.0, 1.0).astype(np.float32)


def render_trajectory(
    positions: torch.Tensor,
    size: int = 64,
    radius: float = 5.0,
    foreground: int = 255,
    background: int = 16,
) -> torch.Tensor:
    """
    Render a disc at each of the given centre positions.

    The disc edge is anti-aliased over one pixel, so sub-pixel motion changes the pictures.

    Args:
        positions (`torch.Tensor` of shape `(num_frames, 2)`): disc centres as `(x, y)` in
            pixels (x to the right, y down; pixel centres at integer coordinates).
        size (`int`): side of the square frames.
        radius (`float`): disc radius in pixels.
        foreground (`int`), background (`int`): grey levels of the disc and the background.

    Returns:
        `torch.Tensor` of shape `(num_frames, 3, size, size)`, `uint8`.
    """
    positions = torch.as_tensor(positions, dtype=torch.float32)
    if positions.ndim != 2 or positions.shape[1] != 2:
        raise ValueError(f"`positions` must have shape (num_frames, 2), got {tuple(positions.shape)}.")
    if not (0 <= background <= 255 and 0 <= foreground <= 255):
        raise ValueError(f"Grey levels must lie in [0, 255], got foreground={foreground}, background={background}.")
    coverage = disc_coverage(positions.numpy(), size, radius)  # (num_frames, size, size)
    image = np.rint(background + coverage * (foreground - background)).astype(np.uint8)
    image = np.repeat(image[:, None], 3, axis=1)  # (num_frames, 3, size, size)
    return torch.from_numpy(image)


def _resolve_index(index, length: int) -> int:
    """A dataset index as a plain non-negative int (negative indices count from the end), or `IndexError`."""
    if not isinstance(index, int) or isinstance(index, bool):
        index = int(index)
    if index < 0:
        index += length
    if not 0 <= index < length:
        raise IndexError(f"Index {index} out of range for {length} items.")
    return index


class SyntheticMultimodalMotion(Dataset):
    """
    Disc videos with a context of steady motion and a future in one of `num_modes` directions.

    Mode `m` moves the disc, after the last context frame, in direction angle `2π·m / num_modes`
    (mode 0 to the right, then counter-clockwise on screen) at `speed` pixels per frame. The
    context starts at a random position with a random direction at the same speed; the whole
    trajectory, for every mode, stays inside the frame.

    Items are a pure function of `(seed, index)`.

    Args:
        num_videos (`int`): number of items.
        num_frames (`int`, *optional*, defaults to 7): frames per video.
        num_context_frames (`int`, *optional*, defaults to 4): frames before the turn.
        size (`int`, *optional*, defaults to 64): frame side in pixels.
        num_modes (`int`, *optional*, defaults to 4): number of equally likely future directions.
        seed (`int`, *optional*, defaults to 0).
        radius (`float`, *optional*, defaults to `size / 12`): disc radius in pixels.
        speed (`float`, *optional*, defaults to `size / 20`): pixels per frame.
        fps (`float`, *optional*, defaults to 10.0): sets the timestamps, `arange(num_frames) / fps`.

    Each item is a dict:
        - `"frames"`: `uint8` `(num_frames, 3, size, size)`
        - `"timestamps"`: `float32` `(num_frames,)` seconds from the first frame
        - `"mode"`: `int` in `[0, num_modes)`
        - `"all_futures"`: `uint8` `(num_modes, num_frames - num_context_frames, 3, size, size)`,
          the future rendered for every mode (`all_futures[mode]` equals `frames[num_context_frames:]`)
        - `"positions"`: `float32` `(num_frames, 2)` disc centres `(x, y)`
    """

    def __init__(
        self,
        num_videos: int,
        num_frames: int = 7,
        num_context_frames: int = 4,
        size: int = 64,
        num_modes: int = 4,
        seed: int = 0,
        radius: float | None = None,
        speed: float | None = None,
        fps: float = 10.0,
    ):
        if not isinstance(num_videos, int) or num_videos < 1:
            raise ValueError(f"`num_videos` must be a positive integer, got {num_videos!r}.")
        if not isinstance(num_context_frames, int) or num_context_frames < 1:
            raise ValueError(f"`num_context_frames` must be a positive integer, got {num_context_frames!r}.")
        if not isinstance(num_frames, int) or num_frames <= num_context_frames:
            raise ValueError(
                f"`num_frames` ({num_frames!r}) must be an integer larger than num_context_frames ({num_context_frames})."
            )
        if not isinstance(num_modes, int) or num_modes < 1:
            raise ValueError(f"`num_modes` must be a positive integer, got {num_modes!r}.")
        if fps <= 0:
            raise ValueError(f"`fps` must be positive, got {fps}.")
        self.num_videos = num_videos
        self.num_frames = num_frames
        self.num_context_frames = num_context_frames
        self.num_future_frames = num_frames - num_context_frames
        self.size = size
        self.num_modes = num_modes
        self.seed = seed
        self.radius = float(radius) if radius is not None else size / 12
        self.speed = float(speed) if speed is not None else size / 20
        self.fps = float(fps)
        # The last context position must leave room for the context behind it and any future.
        self.margin = self.radius + 1 + self.speed * max(num_context_frames - 1, self.num_future_frames)
        if 2 * self.margin >= size:
            raise ValueError(
                f"size={size} is too small for radius={self.radius}, speed={self.speed} and "
                f"{num_frames} frames: the trajectory needs a margin of {self.margin:.1f} px on each side."
            )
        angles = 2 * math.pi * torch.arange(num_modes, dtype=torch.float64) / num_modes
        # Screen y points down, so "counter-clockwise on screen" negates the sine.
        self.mode_directions = torch.stack([angles.cos(), -angles.sin()], dim=1).to(torch.float32)  # (num_modes, 2)

    def __len__(self) -> int:
        return self.num_videos

    def sample_trajectory(self, index: int) -> tuple[torch.Tensor, int, torch.Tensor]:
        """The positions of video `index`: `(context_positions (num_context, 2), mode, future_positions
        (num_modes, num_future, 2))`, all in pixels."""
        rng = np.random.default_rng([self.seed, index])
        last_context = rng.uniform(self.margin, self.size - self.margin, size=2)
        context_angle = rng.uniform(0.0, 2 * math.pi)
        mode = int(rng.integers(self.num_modes))
        context_velocity = self.speed * np.array([math.cos(context_angle), -math.sin(context_angle)])
        steps_back = np.arange(self.num_context_frames - 1, -1, -1)[:, None]  # (num_context, 1)
        context = torch.from_numpy(last_context[None] - steps_back * context_velocity).to(torch.float32)
        steps_ahead = torch.arange(1, self.num_future_frames + 1, dtype=torch.float32)[None, :, None]
        futures = (
            context[-1][None, None] + steps_ahead * self.speed * self.mode_directions[:, None]
        )  # (num_modes, num_future, 2)
        return context, mode, futures

    def __getitem__(self, index: int) -> dict:
        index = _resolve_index(index, self.num_videos)
        context, mode, futures = self.sample_trajectory(index)
        positions = torch.cat([context, futures[mode]])  # (num_frames, 2)
        frames = render_trajectory(positions, self.size, self.radius)  # (num_frames, 3, size, size)
        all_futures = render_trajectory(futures.reshape(-1, 2), self.size, self.radius).reshape(
            self.num_modes, self.num_future_frames, 3, self.size, self.size
        )  # (num_modes, num_future, 3, size, size)
        return {
            "frames": frames,
            "timestamps": torch.arange(self.num_frames, dtype=torch.float32) / self.fps,
            "mode": mode,
            "all_futures": all_futures,
            "positions": positions,
        }


# ---------------------------------------------------------------------------------------------------------------------
# The fork world
# ---------------------------------------------------------------------------------------------------------------------

# Context headings: the four diagonals. A branch that turns by 90 degrees then runs along the other diagonal, so the
# context, the junction and every branch fit a 64 px frame at one patch (16 px) per step.
FORK_HEADINGS = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]]) / math.sqrt(2.0)


def fork_turn_angles(num_modes: int) -> torch.Tensor:
    """Turn of each branch in degrees, counter-clockwise on screen: `linspace(90, -90, num_modes)` (mode 0 is the
    sharpest left turn, the last mode the sharpest right turn; with an odd number the middle one goes straight on)."""
    if num_modes == 1:
        return torch.zeros(1)
    return torch.linspace(90.0, -90.0, num_modes)


def turn_on_screen(directions: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """Rotate `(..., 2)` screen vectors `(x right, y down)` counter-clockwise *as seen on screen* by `degrees (...)`."""
    radians = torch.deg2rad(torch.as_tensor(degrees, dtype=torch.float32))
    cos, sin = radians.cos(), radians.sin()
    x, y = directions[..., 0], directions[..., 1]
    # y points down, so a visually counter-clockwise turn is the mathematically clockwise rotation.
    return torch.stack([x * cos + y * sin, -x * sin + y * cos], dim=-1)


class ForkWorld(Dataset):
    """
    A colourful disc on a textured background drives steadily to a junction, then takes one of `num_modes` equally
    likely branches.

    Context: the disc moves `speed` px per frame along one of the four screen diagonals (drawn per item) and reaches
    the junction on the last context frame. Future: branch `m` turns by `fork_turn_angles(num_modes)[m]` degrees
    (three modes: left, straight, right) and keeps the speed. The branch is drawn uniformly and independently of
    everything else, so no context tells the future apart. At the defaults (64 px, speed 16 px = one patch of a
    patch-16 backbone per step) neighbouring branches of three modes are 22.6 px apart after one step.

    Each item also draws a saturated object colour (random hue) and a static background texture (a tinted grey plus
    two coloured sine gratings of random orientation, period and phase; never as saturated as the object). Items
    are a pure function of `(seed, index)`: item `index` draws from its own `torch.Generator`.

    Args:
        num_items (`int`): number of clips.
        num_context_frames (`int`, *optional*, defaults to 4): frames up to and including the junction.
        num_future_frames (`int`, *optional*, defaults to 1): frames after the junction.
        size (`int`, *optional*, defaults to 64): frame side in pixels.
        num_modes (`int`, *optional*, defaults to 3): number of equally likely branches.
        seed (`int`, *optional*, defaults to 0): a non-negative integer.
        radius (`float`, *optional*, defaults to `size / 10`): disc radius in pixels.
        speed (`float`, *optional*, defaults to `size / 4`): pixels per frame, context and future.
        fps (`float`, *optional*, defaults to 10.0): sets the timestamps, `arange(num_frames) / fps`.

    Raises `ValueError` when the whole fork (every heading, every branch) does not fit the frame, naming the largest
    speed that would.

    Each item is a dict:
        - `"frames"`: `uint8` `(num_frames, 3, size, size)`, context then the drawn branch's future
        - `"timestamps"`: `float32` `(num_frames,)` seconds from the first frame
        - `"mode"`: `int` in `[0, num_modes)`, the drawn branch
        - `"all_futures"`: `uint8` `(num_modes, num_future_frames, 3, size, size)`, every branch's future
          (`all_futures[mode]` equals `frames[num_context_frames:]`; same key as `SyntheticMultimodalMotion`)
        - `"positions"`: `float32` `(num_frames, 2)` disc centres `(x, y)` of the clip
        - `"mode_positions"`: `float32` `(num_modes, num_future_frames, 2)` disc centres of every branch
        - `"object_colour"`: `uint8` `(3,)` RGB of the disc
        - `"background"`: `uint8` `(3, size, size)` the background without the disc

    `datasets`: [`to_hf_dataset`] writes the same items as a `datasets.Dataset` with `Array` features.
    """

    def __init__(
        self,
        num_items: int,
        num_context_frames: int = 4,
        num_future_frames: int = 1,
        size: int = 64,
        num_modes: int = 3,
        seed: int = 0,
        radius: float | None = None,
        speed: float | None = None,
        fps: float = 10.0,
    ):
        for name, value in (
            ("num_items", num_items),
            ("num_context_frames", num_context_frames),
            ("num_future_frames", num_future_frames),
            ("size", size),
            ("num_modes", num_modes),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
        if num_context_frames < 2:
            raise ValueError(
                f"`num_context_frames` must be at least 2 (steady motion needs two frames), got {num_context_frames}."
            )
        if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**31:
            raise ValueError(f"`seed` must be an integer in [0, 2**31), got {seed!r}.")
        if not fps > 0:
            raise ValueError(f"`fps` must be positive, got {fps!r}.")
        self.num_items = num_items
        self.num_context_frames = num_context_frames
        self.num_future_frames = num_future_frames
        self.num_frames = num_context_frames + num_future_frames
        self.size = size
        self.num_modes = num_modes
        self.seed = seed
        self.radius = float(radius) if radius is not None else size / 10
        self.speed = float(speed) if speed is not None else size / 4
        self.fps = float(fps)
        if not self.radius > 0 or not self.speed > 0:
            raise ValueError(f"`radius` and `speed` must be positive, got radius={self.radius}, speed={self.speed}.")

        # Branch directions per heading: (num_headings, num_modes, 2).
        turns = fork_turn_angles(num_modes)
        self.branch_directions = turn_on_screen(FORK_HEADINGS[:, None].expand(-1, num_modes, -1), turns[None])
        # Offsets from the junction at unit speed: context (num_headings, num_context, 2), futures
        # (num_headings, num_modes, num_future, 2).
        steps_back = torch.arange(num_context_frames - 1, -1, -1, dtype=torch.float32)
        steps_ahead = torch.arange(1, num_future_frames + 1, dtype=torch.float32)
        self._context_offsets = -steps_back[None, :, None] * FORK_HEADINGS[:, None]
        self._future_offsets = steps_ahead[None, None, :, None] * self.branch_directions[:, :, None]
        all_offsets = torch.cat(
            (self._context_offsets, self._future_offsets.flatten(1, 2)), dim=1
        )  # (num_headings, num_context + num_modes * num_future, 2)
        lowest, highest = all_offsets.amin(dim=1), all_offsets.amax(dim=1)  # (num_headings, 2) each
        # Disc centres stay in [radius + 1, size - 2 - radius]: the whole disc and a 1 px border inside the frame.
        room = size - 3 - 2 * self.radius
        extent = float((highest - lowest).max())
        if extent * self.speed > room:
            raise ValueError(
                f"The fork does not fit a {size} px frame: {num_context_frames} context and {num_future_frames} "
                f"future frames at speed={self.speed} px need {extent * self.speed:.1f} px of travel but only "
                f"{room:.1f} px are free with radius={self.radius}; use speed <= {room / extent:.2f}, fewer frames or "
                "a larger size."
            )
        # Junction range per heading: (num_headings, 2) lower and upper corners.
        self._junction_low = self.radius + 1 - lowest * self.speed
        self._junction_high = size - 2 - self.radius - highest * self.speed

    def __len__(self) -> int:
        return self.num_items

    def _generator(self, index: int) -> torch.Generator:
        # torch's CPU generator keeps only 32 bits of its seed, so `seed * 2**32 + index` would ignore the seed. An odd
        # multiplier makes index -> seed a bijection modulo 2**32 (no two items of a dataset share a generator); the
        # offset, hashed from `seed`, separates datasets.
        offset = int(np.random.SeedSequence(self.seed).generate_state(1)[0])
        return torch.Generator().manual_seed((offset + index * 0x9E3779B1) % 2**32)

    def sample_scene(self, index: int) -> dict:
        """The random draws of item `index` (no rendering): `mode`, `heading` (int), `positions (num_frames, 2)`,
        `mode_positions (num_modes, num_future, 2)`, `object_colour (3,)` uint8 and the background `texture`."""
        index = _resolve_index(index, self.num_items)
        generator = self._generator(index)
        heading = int(torch.randint(len(FORK_HEADINGS), (1,), generator=generator))
        mode = int(torch.randint(self.num_modes, (1,), generator=generator))
        low, high = self._junction_low[heading], self._junction_high[heading]
        junction = low + torch.rand(2, generator=generator) * (high - low)  # (2,)
        hue = float(torch.rand(1, generator=generator))
        rgb = colorsys.hsv_to_rgb(hue, 1.0, 1.0)
        colour = torch.tensor([round(255 * channel) for channel in rgb], dtype=torch.uint8)
        context = junction + self.speed * self._context_offsets[heading]  # (num_context, 2)
        mode_positions = junction + self.speed * self._future_offsets[heading]  # (num_modes, num_future, 2)
        texture = {
            "base": 70 + 40 * torch.rand(1, generator=generator) + 30 * (torch.rand(3, generator=generator) - 0.5),
            "angles": math.pi * torch.rand(2, generator=generator),
            "periods": 6 + 10 * torch.rand(2, generator=generator),
            "phases": 2 * math.pi * torch.rand(2, generator=generator),
            "amplitudes": 8 + 12 * torch.rand(2, 3, generator=generator),
        }
        return {
            "mode": mode,
            "heading": heading,
            "positions": torch.cat((context, mode_positions[mode])),
            "mode_positions": mode_positions,
            "object_colour": colour,
            "texture": texture,
        }

    def render_background(self, texture: dict) -> torch.Tensor:
        """The static background of a scene, `uint8` `(3, size, size)`: a tinted grey plus two coloured gratings."""
        # numpy, like `disc_coverage`: torch's intra-op threads only slow these small arrays down.
        coordinates = np.arange(self.size, dtype=np.float32)
        angles, periods = texture["angles"].numpy(), texture["periods"].numpy()
        phases, amplitudes = texture["phases"].numpy(), texture["amplitudes"].numpy()
        image = np.broadcast_to(texture["base"].numpy()[:, None, None], (3, self.size, self.size)).copy()
        for grating in range(2):
            along = (
                coordinates[None, :] * np.cos(angles[grating]) + coordinates[:, None] * np.sin(angles[grating])
            )  # (size, size), rows are y
            wave = np.sin(2 * np.pi * along / periods[grating] + phases[grating])  # (size, size)
            image += amplitudes[grating][:, None, None] * wave[None]
        return torch.from_numpy(np.clip(np.rint(image), 0, 255).astype(np.uint8))

    def render(self, positions: torch.Tensor, object_colour: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
        """Discs of `object_colour` at `positions (num_frames, 2)` over `background (3, size, size)` ->
        `uint8` `(num_frames, 3, size, size)`."""
        coverage = disc_coverage(torch.as_tensor(positions).numpy(), self.size, self.radius)[:, None]  # (T, 1, H, W)
        colour = object_colour.numpy().astype(np.float32)[None, :, None, None]  # (1, 3, 1, 1)
        frames = background.numpy().astype(np.float32)[None] * (1 - coverage) + colour * coverage  # (T, 3, H, W)
        return torch.from_numpy(np.rint(frames).astype(np.uint8))

    def __getitem__(self, index: int) -> dict:
        scene = self.sample_scene(index)
        background = self.render_background(scene["texture"])
        colour = scene["object_colour"]
        frames = self.render(scene["positions"], colour, background)  # (num_frames, 3, size, size)
        all_futures = self.render(scene["mode_positions"].reshape(-1, 2), colour, background).reshape(
            self.num_modes, self.num_future_frames, 3, self.size, self.size
        )  # (num_modes, num_future, 3, size, size)
        return {
            "frames": frames,
            "timestamps": torch.arange(self.num_frames, dtype=torch.float32) / self.fps,
            "mode": scene["mode"],
            "all_futures": all_futures,
            "positions": scene["positions"],
            "mode_positions": scene["mode_positions"],
            "object_colour": colour,
            "background": background,
        }

    def read_mode(self, frames: torch.Tensor, item: dict, step: int = 0, **kwargs) -> torch.Tensor:
        """[`read_fork_mode`] for future step `step` of `item` (one of this dataset's items), with the minimum
        visible area set to a third of the disc: `frames (*batch, 3, size, size)` -> `(*batch,)` mode or -1."""
        kwargs.setdefault("min_area", math.pi * self.radius**2 / 3)
        mode_positions = torch.as_tensor(item["mode_positions"])[:, step]  # (num_modes, 2)
        return read_fork_mode(frames, item["object_colour"], item["background"], mode_positions, **kwargs)

    def hf_features(self):
        """The `datasets.Features` of [`to_hf_dataset`] (fixed shapes, so `with_format("torch")` gives tensors)."""
        import datasets

        modes, future, size = self.num_modes, self.num_future_frames, self.size
        return datasets.Features(
            {
                "frames": datasets.Array4D((self.num_frames, 3, size, size), "uint8"),
                "timestamps": datasets.Sequence(datasets.Value("float32"), length=self.num_frames),
                "mode": datasets.Value("int64"),
                "all_futures": datasets.Array5D((modes, future, 3, size, size), "uint8"),
                "positions": datasets.Array2D((self.num_frames, 2), "float32"),
                "mode_positions": datasets.Array3D((modes, future, 2), "float32"),
                "object_colour": datasets.Sequence(datasets.Value("uint8"), length=3),
                "background": datasets.Array3D((3, size, size), "uint8"),
            }
        )

    def to_hf_dataset(self, cache_dir: str | None = None, keep_in_memory: bool = False):
        """
        The items as a `datasets.Dataset` (written by `Dataset.from_generator`, so it can be saved with
        `save_to_disk`, pushed to the Hub or streamed). The rows equal the items and are stored as `uint8` /
        `float32`; `.with_format("torch")` gives tensors with integer arrays widened to `int64` (the `datasets`
        formatters' rule), so cast `frames` back with `.to(torch.uint8)` where the dtype matters.
        """
        import datasets

        return datasets.Dataset.from_generator(
            _fork_world_rows,
            features=self.hf_features(),
            gen_kwargs={"world": self},
            cache_dir=cache_dir,
            keep_in_memory=keep_in_memory,
        )


def _fork_world_rows(world: ForkWorld):
    for index in range(len(world)):
        yield {key: value.numpy() if isinstance(value, torch.Tensor) else value for key, value in world[index].items()}


def locate_fork_object(
    frames: torch.Tensor,
    object_colour: torch.Tensor,
    background: torch.Tensor,
    min_opacity: float = 0.25,
    max_off_colour: float = 0.5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """
    Find a disc of known colour over a known background in RGB frames, from the pixels alone.

    Every pixel is read as the blend `background + opacity * (colour - background)`: its opacity is the projection of
    `pixel - background` onto `colour - background`. Pixels count when the opacity is at least `min_opacity` and the
    pixel lies within `max_off_colour * |colour - background|` of that blend line (so a black or grey frame is not
    mistaken for the disc). Blurry frames (a decoder's output) spread the disc but keep its centroid.

    Args:
        frames (`torch.Tensor` of shape `(*batch, 3, height, width)`): RGB in 0..255 (any float or integer dtype;
            values outside the range, as a decoder may give, are clamped).
        object_colour (`(3,)`): RGB of the disc.
        background (`(3, height, width)`): the background without the disc.

    Returns:
        `(positions (*batch, 2) as (x, y) pixels, nan where nothing is found; area (*batch,) the summed opacity in
        pixels)`.
    """
    frames = torch.as_tensor(frames).to(torch.float32).clamp(0, 255)
    background = torch.as_tensor(background).to(torch.float32)
    colour = torch.as_tensor(object_colour).to(torch.float32)
    if frames.ndim < 3 or frames.shape[-3] != 3:
        raise ValueError(f"`frames` must have shape (*batch, 3, height, width), got {tuple(frames.shape)}.")
    if background.shape != frames.shape[-3:]:
        raise ValueError(f"`background` must have shape {tuple(frames.shape[-3:])}, got {tuple(background.shape)}.")
    if colour.shape != (3,):
        raise ValueError(f"`object_colour` must have shape (3,), got {tuple(colour.shape)}.")
    direction = colour[:, None, None] - background  # (3, H, W)
    contrast = direction.square().sum(dim=0).clamp_min(1.0)  # (H, W)
    offset = frames - background  # (*batch, 3, H, W)
    opacity = (offset * direction).sum(dim=-3) / contrast  # (*batch, H, W)
    off_colour = (offset - opacity[..., None, :, :] * direction).norm(dim=-3)  # (*batch, H, W)
    keep = (opacity >= min_opacity) & (off_colour <= max_off_colour * contrast.sqrt())
    weight = torch.where(keep, opacity.clamp(max=1.0), torch.zeros_like(opacity))  # (*batch, H, W)
    area = weight.sum(dim=(-2, -1))  # (*batch,)
    height, width = frames.shape[-2:]
    x = (weight.sum(dim=-2) * torch.arange(width, dtype=torch.float32)).sum(dim=-1) / area
    y = (weight.sum(dim=-1) * torch.arange(height, dtype=torch.float32)).sum(dim=-1) / area
    return torch.stack([x, y], dim=-1), area


def read_fork_mode(
    frames: torch.Tensor,
    object_colour: torch.Tensor,
    background: torch.Tensor,
    mode_positions: torch.Tensor,
    min_area: float = 10.0,
    max_distance: float | None = None,
) -> torch.Tensor:
    """
    Which branch an RGB frame shows: the mode whose expected disc position is nearest to the disc found by
    [`locate_fork_object`], or -1 ("none") when less than `min_area` pixels of disc are visible or the disc is
    farther than `max_distance` from every mode.

    Args:
        frames (`(*batch, 3, height, width)`): RGB in 0..255, e.g. decoded samples of one future step.
        object_colour (`(3,)`), background (`(3, height, width)`): from the item.
        mode_positions (`(num_modes, 2)`): every mode's disc centre at that step, `(x, y)` pixels.
        min_area (`float`): visible disc needed, in pixels of full opacity.
        max_distance (`float`, *optional*): defaults to half the smallest distance between two modes, so a disc
            between two branches (a blurred average) or still at the junction reads as -1.

    Returns:
        `torch.long` `(*batch,)` mode indices, -1 for none.
    """
    mode_positions = torch.as_tensor(mode_positions, dtype=torch.float32)
    if mode_positions.ndim != 2 or mode_positions.shape[1] != 2:
        raise ValueError(f"`mode_positions` must have shape (num_modes, 2), got {tuple(mode_positions.shape)}.")
    if max_distance is None:
        if mode_positions.shape[0] == 1:
            max_distance = float("inf")
        else:
            separations = torch.cdist(mode_positions, mode_positions)
            separations.fill_diagonal_(float("inf"))
            max_distance = float(separations.min()) / 2
    positions, area = locate_fork_object(frames, object_colour, background)
    distances = torch.linalg.vector_norm(positions[..., None, :] - mode_positions, dim=-1)  # (*batch, num_modes)
    nearest_distance, nearest = distances.nan_to_num(float("inf")).min(dim=-1)
    found = (area >= min_area) & (nearest_distance <= max_distance)
    return torch.where(found, nearest, torch.full_like(nearest, -1))


def fork_mode_coverage(mode_indices: torch.Tensor, num_modes: int) -> float:
    """
    Fraction of the `num_modes` modes that at least one sample shows, from the samples' mode indices (e.g. read
    from decoded pixels by [`read_fork_mode`]; -1 means "no mode" and covers nothing). 0.0 when no sample shows a mode.

    Delegates to `deltatok_hf.metrics.functional.mode_coverage`: each sample becomes the one-hot point of its mode,
    whose nearest mode is that mode.
    """
    if not isinstance(num_modes, int) or num_modes < 1:
        raise ValueError(f"`num_modes` must be a positive integer, got {num_modes!r}.")
    indices = torch.as_tensor(mode_indices, dtype=torch.long).flatten()
    if ((indices < -1) | (indices >= num_modes)).any():
        raise ValueError(f"Mode indices must be -1 or in [0, {num_modes}), got {sorted(set(indices.tolist()))}.")
    shown = indices[indices >= 0]
    if shown.numel() == 0:
        return 0.0
    points = torch.nn.functional.one_hot(shown, num_modes).to(torch.float64)  # (num_shown, num_modes)
    return mode_coverage(points, torch.eye(num_modes, dtype=torch.float64))["coverage"]
