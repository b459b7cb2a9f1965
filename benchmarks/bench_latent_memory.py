"""Peak memory of latent-only sampling (`generate(decode=False)`, ViT-B sizes, random weights) against the number of
samples, one fresh process per row; `--src` runs another checkout of the package (e.g. an older commit in a `git
worktree`) for a before/after comparison in the same way.

    cd benchmarks && ../.venv/bin/python bench_latent_memory.py --samples 1000 4000
    git worktree add /tmp/before <commit> && ../.venv/bin/python bench_latent_memory.py --src /tmp/before --samples 1000 4000

Each row: context delta tokens of a random 256 px clip (4 frames) are encoded first; then the peak resident memory
growth (`ru_maxrss`) of drawing `S` futures x 3 steps as delta tokens, its wall time, and a checksum of the tokens
(the same seed gives the same futures in every checkout, up to float rounding).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def measure(num_samples: int, threads: int) -> dict:
    import torch

    from _common import build_model, make_clip

    torch.set_num_threads(threads)
    model = build_model("vitb")
    frames, timestamps = make_clip(1, 7, 256)
    with torch.inference_mode():
        delta_tokens = model.encode_context(frames[:, :4])[0]
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        output = model.generate(
            delta_tokens=delta_tokens, timestamps=timestamps[:, :4], future_timestamps=timestamps[:, 4:],
            num_samples=num_samples, decode=False, generator=torch.Generator().manual_seed(0),
        )  # fmt: skip
        wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "num_samples": num_samples,
        "peak_rss_growth_mb": round((peak - before) / 1024, 1),
        "wall_s": round(wall, 3),
        "checksum": output.future_delta_tokens.double().abs().sum().item(),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", default=str(HERE.parent), help="checkout whose src/ is imported (default: this one)")
    parser.add_argument("--samples", type=int, nargs="+", default=[1000, 4000])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", default=None, help="results/<output>.json (default: print only)")
    parser.add_argument("--row", type=int, default=None, help=argparse.SUPPRESS)  # one row, in a child process
    args = parser.parse_args(argv)
    if args.row is not None:
        sys.path.insert(0, str(Path(args.src) / "src"))
        import deltatok_hf

        if not Path(deltatok_hf.__file__).resolve().is_relative_to(Path(args.src).resolve()):
            raise SystemExit(f"imported {deltatok_hf.__file__}, not the checkout {args.src}")
        print(json.dumps(measure(args.row, args.threads)))
        return
    rows = []
    for num_samples in args.samples:
        command = [sys.executable, __file__, "--src", args.src, "--threads", str(args.threads), "--row", str(num_samples)]
        result = subprocess.run(command, check=True, capture_output=True, text=True, cwd=HERE)
        rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
        print(rows[-1])
    if args.output:
        from _common import write_json

        write_json(args.output, {"src": args.src, "command": "python " + " ".join(sys.argv), "rows": rows})


if __name__ == "__main__":
    main()
