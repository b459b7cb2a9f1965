"""A synthetic video dataset whose future is genuinely multimodal.

A bright disc on a dark background moves at constant velocity during the context frames, then
turns into one of `num_modes` fixed directions, chosen uniformly at random and independently of
the context. A deterministic predictor can at best forecast the average of the modes (a blurred
or motionless disc); a Best-of-Many trained predictor (paper, Sec. 3.3) should cover every mode
with some of its samples. Each item carries the rendered future of every mode so that mode
coverage can be scored without a model of the renderer.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.utils.data import Dataset


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
    # numpy: these arrays are tiny, and torch's intra-op threads only add overhead here.
    centres = positions.numpy()
    coordinates = np.arange(size, dtype=np.float32)
    delta_x = coordinates[None, None, :] - centres[:, 0, None, None]  # (num_frames, 1, size)
    delta_y = coordinates[None, :, None] - centres[:, 1, None, None]  # (num_frames, size, 1)
    distance = np.sqrt(delta_x**2 + delta_y**2)  # (num_frames, size, size)
    coverage = np.clip(radius + 0.5 - distance, 0.0, 1.0)  # (num_frames, size, size)
    image = np.rint(background + coverage * (foreground - background)).astype(np.uint8)
    image = np.repeat(image[:, None], 3, axis=1)  # (num_frames, 3, size, size)
    return torch.from_numpy(image)


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
        if not isinstance(index, int) or isinstance(index, bool):
            index = int(index)
        if index < 0:
            index += self.num_videos
        if not 0 <= index < self.num_videos:
            raise IndexError(f"Index {index} out of range for {self.num_videos} videos.")
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
