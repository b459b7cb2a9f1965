#!/usr/bin/env python
"""Fit an RGB decoder (features -> pixels) on the frozen backbone features of a DeltaTok / DeltaWorld, with 🤗 Accelerate.

    accelerate launch examples/train_rgb_decoder.py --feature_model path/to/deltatok --train_data path/to/videos \
        --model_config vitb --frame_size 256 --train_batch_size 32 --mixed_precision bf16 --max_train_steps 100000

`--train_data` is a video folder or file, a `datasets` folder or Hub id, or `synthetic`; `--model_config` is `tiny`,
`vitb` (the released head's sizes) or a `config.json` of any size. The loss is L1 on 0..1 RGB (`--pixel_loss mse` for
MSE). Checkpoints are `checkpoint-{step}` folders (`--resume_from_checkpoint latest`); the decoder is saved with
`save_pretrained` at the end. See `deltatok_hf.training.rgb_decoder.RGBDecoderTrainingArguments` for every option.
"""

import argparse

from deltatok_hf.training import parse_arguments
from deltatok_hf.training.rgb_decoder import RGBDecoderTrainingArguments, train_rgb_decoder


def parse_args(argv=None) -> RGBDecoderTrainingArguments:
    return parse_arguments(
        RGBDecoderTrainingArguments, argv, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def main(argv=None) -> dict:
    return train_rgb_decoder(parse_args(argv))


if __name__ == "__main__":
    main()
