#!/usr/bin/env python
"""Train or fine-tune the DeltaWorld predictor with 🤗 Accelerate (the same code as `deltatok-hf train-deltaworld`),
on frames or on cached delta tokens.

    # on the fly: frozen backbone + tokenizer encoder at every step
    accelerate launch examples/train_deltaworld.py --train_data path/to/videos --model_config vitb \
        --tokenizer path/to/deltatok --mixed_precision bf16
    # from a token cache written by examples/cache_delta_tokens.py: no backbone, no encoder
    accelerate launch examples/train_deltaworld.py --token_cache path/to/cache --model_config vitb

Best-of-Many training (official `training/world.py`): `--num_samples_train` noise queries per target are scored
without gradient and only the closest one is trained. `--deterministic` trains the one-query ablation instead.
Every option: `deltatok_hf.training.DeltaWorldTrainingArguments`.
"""

import argparse

from deltatok_hf.training import DeltaWorldTrainingArguments, parse_arguments, train_deltaworld


def parse_args(argv=None) -> DeltaWorldTrainingArguments:
    return parse_arguments(
        DeltaWorldTrainingArguments, argv, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def main(argv=None) -> dict:
    return train_deltaworld(parse_args(argv))


if __name__ == "__main__":
    main()
