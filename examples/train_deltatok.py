#!/usr/bin/env python
"""Train or fine-tune the DeltaTok tokenizer with 🤗 Accelerate (the same code as `deltatok-hf train-deltatok`).

    accelerate launch examples/train_deltatok.py --train_data path/to/videos --model_config vitb \
        --train_batch_size 128 --gradient_accumulation_steps 1 --mixed_precision bf16 --max_train_steps 1000000

Every step reconstructs the last frame of a clip from the frame before it (the official `training/deltatok.py`);
the backbone stays frozen. See examples/README.md for the recipes (`--preset released|paper`) and
`deltatok_hf.training.DeltaTokTrainingArguments` for every option.
"""

import argparse

from deltatok_hf.training import DeltaTokTrainingArguments, parse_arguments, train_deltatok


def parse_args(argv=None) -> DeltaTokTrainingArguments:
    return parse_arguments(
        DeltaTokTrainingArguments, argv, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def main(argv=None) -> dict:
    return train_deltatok(parse_args(argv))


if __name__ == "__main__":
    main()
