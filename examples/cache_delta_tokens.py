#!/usr/bin/env python
"""Run the frozen backbone + DeltaTok encoder once over sampled clips and store their delta tokens (the same code as
`deltatok-hf cache-tokens`).

    python examples/cache_delta_tokens.py --train_data path/to/videos --tokenizer path/to/deltatok \
        --num_frames 8 --frame_size 512 --views_per_video 4 --output_dir cache/kinetics-8f
    accelerate launch examples/train_deltaworld.py --token_cache cache/kinetics-8f --tokenizer path/to/deltatok

The cache is a `datasets` dataset (`save_to_disk`), one row per view of a video; `cache_info.json` records the
tokenizer's checksum so that training refuses a cache of another tokenizer (see `deltatok_hf.training.cache`).
`--benchmark STEPS` then times DeltaWorld training steps from frames and from the cached tokens on the same batch,
in this process, and prints the ratio.
"""

import argparse

from deltatok_hf.training import CacheTokensArguments, cache_delta_tokens, parse_arguments


def parse_args(argv=None) -> CacheTokensArguments:
    return parse_arguments(
        CacheTokensArguments, argv, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def main(argv=None) -> dict:
    return cache_delta_tokens(parse_args(argv))


if __name__ == "__main__":
    main()
