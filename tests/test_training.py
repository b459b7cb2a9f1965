"""Tests of `deltatok_hf.training` and of the training commands: tiny configs, a few CPU steps, run as users run them
(the `deltatok-hf` console command, `deltatok_hf.cli.main`, and the example scripts as subprocesses).

Every model here has random weights: the losses prove the mechanics (decrease, resume, data parallelism), not quality.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from deltatok_hf import DeltaTokConfig, DeltaTokModel, DeltaWorldConfig, DeltaWorldForForecasting
from deltatok_hf.cli import main as cli_main
from deltatok_hf.training import (
    DECAY_MODULE_TYPES,
    DELTATOK_PARTS,
    CacheTokensArguments,
    DeltaTokTrainingArguments,
    DeltaWorldTrainingArguments,
    TrainerState,
    build_clip_dataset,
    build_lr_scheduler,
    build_optimizer,
    build_parameter_groups,
    freeze_parameters,
    list_checkpoints,
    parse_arguments,
    prune_checkpoints,
    remove_incomplete_checkpoints,
    render_model_card,
    resolve_resume_checkpoint,
    set_base_learning_rate,
)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
PYTHON = sys.executable
BIN = Path(sys.executable).parent
SUBPROCESS_ENV = {"ACCELERATE_USE_CPU": "1", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}


def run_command(*command, timeout=300):
    env = {**os.environ, **SUBPROCESS_ENV}
    result = subprocess.run([str(c) for c in command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    return result


def run_cli(*arguments):
    """`deltatok-hf ...` in this process (no interpreter start-up); fails the test on a non-zero exit code."""
    code = cli_main([str(a) for a in arguments])
    assert code == 0, f"deltatok-hf {arguments} exited with {code}"


def read_summary(output_dir):
    return json.loads((Path(output_dir) / "train_summary.json").read_text())


# Small enough for 2 shared cores: 32x32 frames (4 patches), 4 synthetic videos, batches of 2.
TINY_DATA = ["--train_data", "synthetic", "--frame_size", "32", "--num_synthetic_videos", "4", "--train_batch_size", "2"]


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tokenizer")
    torch.manual_seed(0)
    DeltaTokModel(DeltaTokConfig.tiny()).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def token_cache(tokenizer_dir, tmp_path_factory):
    """Written by the console command, as a pip user would (`deltatok-hf cache-tokens`)."""
    path = tmp_path_factory.mktemp("cache") / "tokens"
    run_command(
        BIN / "deltatok-hf", "cache-tokens", "--tokenizer", tokenizer_dir, "--train_data", "synthetic",
        "--num_frames", "5", "--frame_size", "32", "--num_synthetic_videos", "4", "--views_per_video", "2",
        "--batch_size", "4", "--store_last_features", "--output_dir", path,
    )  # fmt: skip
    return path


# ------------------------------------------------------------------ optimisation rules


def test_optimizer_groups_decay_only_linear_and_conv_weights():
    for model in (DeltaTokModel(DeltaTokConfig.tiny()), DeltaWorldForForecasting(DeltaWorldConfig.tiny())):
        decay, no_decay = build_parameter_groups(model, weight_decay=0.4)
        modules = dict(model.named_modules())
        for name in decay["names"]:
            module_name, _, leaf = name.rpartition(".")
            assert leaf == "weight" and isinstance(modules[module_name], DECAY_MODULE_TYPES), name
        for name in no_decay["names"]:
            module_name, _, leaf = name.rpartition(".")
            assert not (leaf == "weight" and isinstance(modules.get(module_name), DECAY_MODULE_TYPES)), name
        assert any(".bias" in n for n in no_decay["names"]) and any("norm" in n for n in no_decay["names"])
        assert decay["weight_decay"] == 0.4 and no_decay["weight_decay"] == 0.0
        trainable = {n for n, p in model.named_parameters() if p.requires_grad}
        assert set(decay["names"]) | set(no_decay["names"]) == trainable  # the frozen backbone / tokenizer left out
        assert not any("backbone" in n for n in decay["names"] + no_decay["names"])


def test_warmup_then_constant_learning_rate():
    optimizer = build_optimizer(nn.Linear(2, 2), learning_rate=1e-3, weight_decay=0.0)
    scheduler = build_lr_scheduler(optimizer, warmup_steps=4)
    rates = []
    for _ in range(7):
        rates.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    assert rates == pytest.approx([0.0, 2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3])


def test_new_base_learning_rate_keeps_the_schedule_position():
    optimizer = build_optimizer(nn.Linear(2, 2), learning_rate=1e-3, weight_decay=0.0)
    scheduler = build_lr_scheduler(optimizer, warmup_steps=4)
    for _ in range(2):
        optimizer.step()
        scheduler.step()
    restored = build_optimizer(nn.Linear(2, 2), learning_rate=1e-3, weight_decay=0.0)
    restored_scheduler = build_lr_scheduler(restored, warmup_steps=4)
    restored.load_state_dict(optimizer.state_dict())
    restored_scheduler.load_state_dict(scheduler.state_dict())
    set_base_learning_rate(restored, restored_scheduler, 1e-5)  # a cool-down resumed at a lower rate
    assert restored.param_groups[0]["lr"] == pytest.approx(0.5e-5)  # still half-way through the warm-up
    restored.step()
    restored_scheduler.step()
    assert restored_scheduler.get_last_lr()[0] == pytest.approx(0.75e-5)


def test_freeze_encoder_leaves_only_decoder_trainable():
    model = DeltaTokModel(DeltaTokConfig.tiny())
    freeze_parameters(model, ["encoder"], DELTATOK_PARTS)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(n.startswith("decoder_blocks.") for n in trainable)
    with pytest.raises(ValueError, match="matches no parameter"):
        freeze_parameters(model, ["no_such_part"], DELTATOK_PARTS)


# ------------------------------------------------------------------ arguments (checked once, at the boundary)


def test_recipe_fills_unset_arguments_and_explicit_values_win():
    released = DeltaTokTrainingArguments()
    assert (released.learning_rate, released.weight_decay, released.max_grad_norm) == (1e-3, 1e-2, 1e-2)
    assert released.reconstruction_loss == "log_cosh" and released.num_frames == 2
    paper = DeltaTokTrainingArguments(preset="paper", weight_decay=0.5)
    assert paper.reconstruction_loss == "mse" and paper.weight_decay == 0.5
    world = DeltaWorldTrainingArguments(max_grad_norm=0)
    assert world.num_frames == 8 and world.max_grad_norm is None and world.output_dir == "outputs/deltaworld"
    assert CacheTokensArguments(output_dir="cache").num_frames == 8  # the frames DeltaWorld trains on


@pytest.mark.parametrize(
    "arguments_class, values, message",
    [
        (DeltaWorldTrainingArguments, {"num_samples_train": 0}, "num_samples_train must be >= 1, got 0"),
        (DeltaWorldTrainingArguments, {"num_frames": 1}, "num_frames must be >= 2"),
        (DeltaTokTrainingArguments, {"frame_size": 40}, "multiple of 16"),
        (DeltaTokTrainingArguments, {"preset": "fast"}, "Unknown preset 'fast'"),
        (DeltaTokTrainingArguments, {"time_stride_range": [0.3, 0.1]}, "time_stride_range"),
        (DeltaTokTrainingArguments, {"train_batch_size": 0}, "train_batch_size must be >= 1, got 0"),
        (DeltaTokTrainingArguments, {"checkpoints_total_limit": 0}, "checkpoints_total_limit"),
        (CacheTokensArguments, {}, "output_dir is required"),
    ],
)
def test_bad_argument_values_raise_naming_the_value(arguments_class, values, message):
    with pytest.raises(ValueError, match=message):
        arguments_class(**values)


def test_shared_training_arguments_need_a_model_type():
    from deltatok_hf.training import TrainingArguments

    with pytest.raises(TypeError, match="DeltaTokTrainingArguments or DeltaWorldTrainingArguments"):
        TrainingArguments()


def test_command_line_builds_the_same_dataclass_as_python():
    parsed = parse_arguments(
        DeltaWorldTrainingArguments,
        ["--num_samples_train", "8", "--freeze", "head", "--time_stride_range", "0.1", "0.2", "--deterministic", "false"],
    )
    assert parsed == DeltaWorldTrainingArguments(num_samples_train=8, freeze=["head"], time_stride_range=[0.1, 0.2])


@pytest.mark.parametrize(
    "script, arguments_class",
    [
        ("train_deltatok.py", DeltaTokTrainingArguments),
        ("train_deltaworld.py", DeltaWorldTrainingArguments),
        ("cache_delta_tokens.py", CacheTokensArguments),
    ],
)
def test_example_scripts_parse_into_the_command_dataclasses(script, arguments_class):
    import runpy

    namespace = runpy.run_path(str(EXAMPLES / script))  # by path: examples/ never goes on sys.path
    argv = ["--output_dir", "out", "--seed", "3"]
    assert namespace["parse_args"](argv) == parse_arguments(arguments_class, argv)
    assert callable(namespace["main"])


def test_cli_reports_a_bad_value_with_exit_code_2(tmp_path, capsys):
    code = cli_main(["train-deltaworld", "--num_samples_train", "0", "--output_dir", str(tmp_path)])
    assert code == 2 and "num_samples_train must be >= 1, got 0" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # checked before anything ran


def test_clip_dataset_resolves_synthetic_and_video_files():
    from deltatok_hf.data import SyntheticMultimodalMotion, VideoClipDataset, demo_clip_path

    synthetic = build_clip_dataset(DeltaTokTrainingArguments(frame_size=32, num_synthetic_videos=3))
    assert isinstance(synthetic, SyntheticMultimodalMotion) and len(synthetic) == 3
    assert synthetic[0]["frames"].shape == (2, 3, 32, 32)
    video = build_clip_dataset(DeltaTokTrainingArguments(train_data=str(demo_clip_path()), frame_size=32), num_frames=3)
    assert isinstance(video, VideoClipDataset)
    clip = next(iter(video))
    assert clip["frames"].shape == (3, 3, 32, 32) and clip["timestamps"].shape == (3,)


# ------------------------------------------------------------------ checkpoint folders


def _fake_checkpoint(output_dir: Path, name: str, complete: bool = True) -> Path:
    path = output_dir / name
    path.mkdir(parents=True)
    if complete:
        (path / "trainer_state.json").write_text("{}")
    return path


def test_latest_never_picks_a_half_written_checkpoint(tmp_path):
    _fake_checkpoint(tmp_path, "checkpoint-2")
    _fake_checkpoint(tmp_path, "checkpoint-10")
    _fake_checkpoint(tmp_path, "checkpoint-12.tmp", complete=False)  # a save killed half-way
    _fake_checkpoint(tmp_path, "checkpoint-1.discarded", complete=False)  # a prune killed half-way
    assert [p.name for p in list_checkpoints(tmp_path)] == ["checkpoint-2", "checkpoint-10"]  # numeric order
    assert resolve_resume_checkpoint("latest", tmp_path).name == "checkpoint-10"
    assert resolve_resume_checkpoint("latest", tmp_path / "empty") is None
    with pytest.raises(ValueError, match="checkpoint-<step>"):
        resolve_resume_checkpoint(str(tmp_path / "checkpoint-12.tmp"), tmp_path)
    removed = remove_incomplete_checkpoints(tmp_path)
    assert sorted(p.name for p in removed) == ["checkpoint-1.discarded", "checkpoint-12.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-10", "checkpoint-2"]
    prune_checkpoints(tmp_path, total_limit=1)
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint-10"]


def test_trainer_state_refuses_another_batch_layout(tmp_path):
    state = TrainerState(4, 1, 2, num_processes=1, train_batch_size=2, gradient_accumulation_steps=1,
                         learning_rate=1e-3, seed=0, losses={"1": 0.5})  # fmt: skip
    state.save(tmp_path / "trainer_state.json")
    loaded = TrainerState.load(tmp_path / "trainer_state.json")
    assert loaded == state
    loaded.check_compatible(1, 2, 1)
    with pytest.raises(ValueError, match=r"\(1, 2, 1\), this run uses \(2, 2, 1\)"):
        loaded.check_compatible(2, 2, 1)
    with pytest.raises(ValueError, match="incomplete"):
        TrainerState.load(tmp_path / "missing" / "trainer_state.json")
    (tmp_path / "old.json").write_text(json.dumps({"global_step": 2, "epoch": 0, "batches_in_epoch": 2}))
    with pytest.raises(ValueError, match="older deltatok-hf"):
        TrainerState.load(tmp_path / "old.json")  # written before the batch layout was recorded


def test_model_card_template_renders_and_round_trips():
    from deltatok_hf.training import build_card_data

    card = render_model_card(
        "deltaworld_template.md",
        build_card_data("deltaworld", tags=["deltaworld"]),
        model_name="org/model",
        args={"preset": "released", "train_data": "synthetic", "model_config": "tiny", "learning_rate": 1e-4,
              "weight_decay": 0.4, "warmup_steps": 5000, "max_grad_norm": None, "num_frames": 8},
        tokenizer="org/tokenizer",
        summary={"use_best_of_many": True, "num_samples_train": 256, "effective_batch_size": 1024,
                 "num_processes": 8, "global_step": 10, "final_loss": 0.5},
        command="deltatok-hf train-deltaworld",
    )  # fmt: skip
    assert card.data.tags == ["deltaworld"] and card.data.pipeline_tag == "other"
    assert "Best-of-Many over 256" in card.text and "`org/tokenizer` (frozen)" in card.text and "{{" not in str(card)


# ------------------------------------------------------------------ the commands


def test_train_deltatok_loss_decreases_saves_checkpoints_and_card(tmp_path):
    # The example script as a subprocess. Two synthetic videos = one fixed batch; the high LR without clipping makes
    # the decrease reliable.
    output_dir = tmp_path / "deltatok"
    run_command(
        PYTHON, EXAMPLES / "train_deltatok.py", *TINY_DATA, "--num_synthetic_videos", "2", "--max_train_steps", "8",
        "--learning_rate", "3e-3", "--warmup_steps", "0", "--max_grad_norm", "0", "--checkpointing_steps", "4",
        "--output_dir", output_dir,
    )  # fmt: skip
    losses = list(read_summary(output_dir)["losses"].values())
    assert len(losses) == 8
    assert sum(losses[-2:]) / 2 < 0.9 * sum(losses[:2]) / 2, losses
    assert (output_dir / "checkpoint-4" / "model.safetensors").is_file()
    assert (output_dir / "checkpoint-8" / "optimizer.bin").is_file()
    assert json.loads((output_dir / "checkpoint-8" / "trainer_state.json").read_text())["global_step"] == 8
    model = DeltaTokModel.from_pretrained(output_dir)
    assert model.config.reconstruction_loss == "log_cosh"  # the released preset
    DeltaTokModel.from_pretrained(output_dir / "checkpoint-4")
    from huggingface_hub import ModelCard

    card = ModelCard.load(output_dir / "README.md")
    assert "deltatok" in card.data.tags and "| optimizer steps | 8 |" in card.text


def test_train_deltaworld_resume_latest_reproduces_uninterrupted_run(tmp_path, tokenizer_dir):
    output_dir = tmp_path / "deltaworld"
    command = [
        "train-deltaworld", *TINY_DATA, "--num_frames", "5", "--tokenizer", tokenizer_dir, "--num_samples_train", "8",
        "--max_train_steps", "4", "--warmup_steps", "2", "--checkpointing_steps", "2", "--learning_rate", "1e-3",
        "--output_dir", output_dir,
    ]  # fmt: skip
    run_cli(*command)
    uninterrupted = read_summary(output_dir)
    assert uninterrupted["backbone_calls"] > 0  # on the fly: the backbone runs every step
    final_weights = (output_dir / "model.safetensors").read_bytes()

    # A crash after step 2: only checkpoint-2 is left.
    for path in output_dir.iterdir():
        if path.name != "checkpoint-2":
            subprocess.run(["rm", "-rf", str(path)], check=True)
    run_cli(*command, "--resume_from_checkpoint", "latest")
    resumed = read_summary(output_dir)
    assert resumed["global_step"] == 4 and resumed["resumed_from"].endswith("checkpoint-2")
    assert resumed["losses"] == uninterrupted["losses"]  # steps 1-2 from trainer_state.json, 3-4 recomputed
    assert (output_dir / "checkpoint-4").is_dir()
    assert (output_dir / "model.safetensors").read_bytes() == final_weights  # bit for bit


def test_token_cache_has_one_row_per_view(token_cache):
    from datasets import load_from_disk

    cache = load_from_disk(str(token_cache)).with_format("torch")
    assert len(cache) == 8  # 4 videos x 2 views
    assert cache[0]["delta_tokens"].shape == (5, 64) and cache[0]["timestamps"].shape == (5,)
    assert cache[0]["last_features"].shape == (4, 64)  # 32x32 frames = 4 patches
    assert json.loads((token_cache / "cache_info.json").read_text())["views_per_video"] == 2


def test_train_deltaworld_from_token_cache_never_runs_backbone_or_encoder(tmp_path, token_cache):
    output_dir = tmp_path / "cached"
    run_cli(
        "train-deltaworld", "--token_cache", token_cache, "--train_batch_size", "4", "--num_samples_train", "8",
        "--max_train_steps", "3", "--warmup_steps", "0", "--checkpointing_steps", "10", "--output_dir", output_dir,
    )  # fmt: skip
    summary = read_summary(output_dir)
    assert summary["global_step"] == 3
    assert summary["backbone_calls"] == 0 and summary["encoder_calls"] == 0
    model = DeltaWorldForForecasting.from_pretrained(output_dir)
    assert model.config.num_samples_train == 8


def test_token_cache_of_another_tokenizer_is_refused(tmp_path, token_cache, capsys):
    other = tmp_path / "other_tokenizer"
    torch.manual_seed(1)
    DeltaTokModel(DeltaTokConfig.tiny()).save_pretrained(other)
    code = cli_main(["train-deltaworld", "--token_cache", str(token_cache), "--tokenizer", str(other),
                     "--output_dir", str(tmp_path / "out")])  # fmt: skip
    assert code == 2 and "written with another tokenizer" in capsys.readouterr().err


def test_two_process_data_parallel_ends_with_identical_parameters(tmp_path, token_cache):
    output_dir = tmp_path / "ddp"
    run_command(
        BIN / "accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--main_process_port", "29531", EXAMPLES / "train_deltaworld.py", "--token_cache", token_cache,
        "--train_batch_size", "2", "--num_samples_train", "8", "--max_train_steps", "3", "--warmup_steps", "0",
        "--learning_rate", "1e-3", "--checkpointing_steps", "10", "--write_rank_checksums", "--output_dir", output_dir,
    )  # fmt: skip
    summary = read_summary(output_dir)
    assert summary["num_processes"] == 2 and summary["effective_batch_size"] == 4
    checksums = [json.loads((output_dir / f"rank{rank}_checksum.json").read_text())["checksum"] for rank in (0, 1)]
    assert checksums[0] == checksums[1]
    assert checksums[0] != summary["initial_checksum"]  # and training did move them


@pytest.mark.slow
def test_best_of_many_covers_modes_that_the_deterministic_model_averages(tmp_path):
    output = tmp_path / "multimodality.json"
    # The bundled demo's tokenizer: a pipeline folder (world_model/) now, a DeltaWorld folder before; else random init.
    demo = ROOT / "src" / "deltatok_hf" / "assets" / "demo_model"
    found = [path for path in (demo / "world_model", demo) if (path / "config.json").is_file()]
    extra = ["--tokenizer", found[0]] if found else []
    run_command(
        PYTHON, EXAMPLES / "multimodality_experiment.py", *extra, "--num_train_videos", "256", "--num_eval_videos",
        "64", "--max_train_steps", "300", "--output_json", output, timeout=1800,
    )  # fmt: skip
    results = json.loads(output.read_text())
    assert results["ratio_best_of_20_token_mse"] < 0.7, results
    assert results["best_of_many"]["mode_coverage"] > results["deterministic"]["mode_coverage"] + 0.2, results
