#!/usr/bin/env python
"""Fit a segmentation or depth linear probe (BatchNorm + 1x1 conv) on frozen backbone features with 🤗 Accelerate.

    accelerate launch examples/train_linear_probe.py --model path/to/deltaworld --dataset cityscapes \
        --data_root /data/cityscapes --split train --output_dir heads/cityscapes
    accelerate launch examples/train_linear_probe.py --model path/to/deltaworld --dataset kitti \
        --data_root /data/kitti --split_file eigen_train_files.txt --output_dir heads/kitti
    python examples/train_linear_probe.py --model tiny-model --dataset synthetic --task segmentation --output_dir out

The head trains on the labelled frames of the benchmark windows, cut into the same square crops and label halves
as `evaluate_forecasting.py` uses, and loads there with `--head`. Recipe and losses: `deltatok_hf.evaluation.probe`.
"""

from deltatok_hf.evaluation import LinearProbeConfig, config_argument_parser, train_linear_probe


def parse_args(argv=None) -> LinearProbeConfig:
    parser = config_argument_parser(LinearProbeConfig, description=__doc__)
    (config,) = parser.parse_args_into_dataclasses(argv, look_for_args_file=False)
    return config


def main(argv=None) -> dict:
    return train_linear_probe(parse_args(argv))


if __name__ == "__main__":
    main()
