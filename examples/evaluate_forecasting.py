#!/usr/bin/env python
"""Evaluate DeltaWorld forecasts on VSPW / Cityscapes / KITTI (with a task head), a folder of videos or synthetic clips.

    # the paper's benchmark protocol (frames 512 on the short side, 20 samples, 4 context frames, horizons 1 and 3)
    accelerate launch examples/evaluate_forecasting.py --model path/to/deltaworld --dataset cityscapes \
        --data_root /data/cityscapes --head path/to/cityscapes-head --output_dir eval/cityscapes
    # feature-space scores only: any folder of videos, or the synthetic multimodal clips (adds mode coverage)
    accelerate launch examples/evaluate_forecasting.py --model path/to/deltaworld --dataset videos --data_root clips/ \
        --output_dir eval/clips

The same run without the repository: `deltatok-hf evaluate` takes the same options. The protocol (rows best-of-N,
mean-of-N, copy-last, present; mIoU / RMSE / smooth-L1 / energy score per step) is described in
`deltatok_hf.evaluation.forecasting`. Writes `results.json` and `results.md` into `--output_dir`.
"""

from deltatok_hf.evaluation import ForecastEvaluationConfig, config_argument_parser, evaluate_forecasting


def parse_args(argv=None) -> ForecastEvaluationConfig:
    parser = config_argument_parser(ForecastEvaluationConfig, description=__doc__)
    (config,) = parser.parse_args_into_dataclasses(argv, look_for_args_file=False)
    return config


def main(argv=None) -> dict:
    return evaluate_forecasting(parse_args(argv))


if __name__ == "__main__":
    main()
