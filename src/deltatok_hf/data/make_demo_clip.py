"""Make the bundled demo clip `deltatok_hf/assets/city_clip.mp4` from `cityCC0.mpg`.

Usage:

    python -m deltatok_hf.data.make_demo_clip --source ../shared/data/cityCC0.mpg \
        --out src/deltatok_hf/assets/city_clip.mp4

The source (720x405, 25 fps, 7.6 s, MPEG-2 in MPEG-PS; CC0, from the Kivy examples) is cut to
`--duration` seconds from `--start`, resized to `--width` pixels wide keeping the aspect ratio
(height rounded to an even number), and re-encoded with H.264 (libx264; MPEG-4 part 2 when the
bundled FFmpeg lacks libx264) with a keyframe every second, so seeking is exercised by tests.
"""

from __future__ import annotations

import argparse
from fractions import Fraction
from pathlib import Path


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True, help="input video (cityCC0.mpg)")
    parser.add_argument("--out", type=Path, required=True, help="output .mp4 path")
    parser.add_argument("--start", type=float, default=0.0, help="first second to keep")
    parser.add_argument("--duration", type=float, default=3.5, help="seconds to keep")
    parser.add_argument("--width", type=int, default=256, help="output width in pixels")
    parser.add_argument("--fps", type=int, default=25, help="output frame rate")
    parser.add_argument("--crf", type=int, default=26, help="x264 constant rate factor")
    return parser.parse_args(argv)


def make_demo_clip(
    source: Path,
    out: Path,
    start: float = 0.0,
    duration: float = 3.5,
    width: int = 256,
    fps: int = 25,
    crf: int = 26,
) -> int:
    """Transcode `source` into a small H.264 clip at `out`; return the number of frames written."""
    import av

    if not Path(source).is_file():
        raise ValueError(f"Source video not found: {source!r}.")
    if width < 16 or width % 2:
        raise ValueError(f"`width` must be an even number >= 16, got {width}.")
    if duration <= 0:
        raise ValueError(f"`duration` must be positive, got {duration}.")

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    num_written = 0
    with av.open(str(source)) as input_container:
        input_stream = input_container.streams.video[0]
        source_height, source_width = input_stream.codec_context.height, input_stream.codec_context.width
        height = int(round(source_height * width / source_width / 2)) * 2
        start_pts = input_stream.start_time or 0
        max_frames = int(round(duration * fps))
        with av.open(str(out), mode="w") as output_container:
            output_stream = output_container.add_stream(codec, rate=fps)
            output_stream.width, output_stream.height = width, height
            output_stream.pix_fmt = "yuv420p"
            output_stream.codec_context.gop_size = fps  # a keyframe every second
            if codec == "libx264":
                output_stream.options = {"crf": str(crf), "preset": "slow", "tune": "film"}
            else:
                output_stream.bit_rate = 400_000
            for frame in input_container.decode(input_stream):
                time = float((frame.pts - start_pts) * input_stream.time_base)
                if time < start - 1e-6:
                    continue
                if num_written >= max_frames:
                    break
                resized = frame.reformat(width=width, height=height, format="yuv420p", interpolation="AREA")
                resized.pts = num_written
                resized.time_base = Fraction(1, fps)
                for packet in output_stream.encode(resized):
                    output_container.mux(packet)
                num_written += 1
            for packet in output_stream.encode(None):
                output_container.mux(packet)
    return num_written


def main(argv=None) -> None:
    args = parse_args(argv)
    num_frames = make_demo_clip(args.source, args.out, args.start, args.duration, args.width, args.fps, args.crf)
    size_kib = args.out.stat().st_size / 1024
    print(f"Wrote {num_frames} frames to {args.out} ({size_kib:.0f} KiB).")


if __name__ == "__main__":
    main()
