"""Acceptance tests of the training examples (issue 4): tiny configs, a few CPU steps, run as users run them."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from deltatok_hf import DeltaTokConfig, DeltaTokModel, DeltaWorldConfig, DeltaWorldForForecasting
from deltatok_hf.training import (
    DECAY_MODULE_TYPES,
    DELTATOK_PARTS,
    build_lr_scheduler,
    build_optimizer,
    build_parameter_groups,
    freeze_parameters,
    render_model_card,
)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
PYTHON = sys.executable
ACCELERATE = str(Path(sys.executable).with_name("accelerate"))


def run_script(*command, timeout=300):
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    result = subprocess.run([str(c) for c in command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    return result


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
    path = tmp_path_factory.mktemp("cache") / "tokens"
    run_script(
        PYTHON, EXAMPLES / "cache_delta_tokens.py", "--tokenizer", tokenizer_dir, "--train_data", "synthetic",
        "--num_frames", "5", "--frame_size", "32", "--num_synthetic_videos", "4", "--views_per_video", "2",
        "--batch_size", "4", "--store_last_features", "--output_dir", path,
    )  # fmt: skip
    return path


# ------------------------------------------------------------------ optimisation rules (in process)


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


def test_freeze_encoder_leaves_only_decoder_trainable():
    model = DeltaTokModel(DeltaTokConfig.tiny())
    freeze_parameters(model, ["encoder"], DELTATOK_PARTS)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(n.startswith("decoder_blocks.") for n in trainable)
    with pytest.raises(ValueError, match="matches no parameter"):
        freeze_parameters(model, ["no_such_part"], DELTATOK_PARTS)


def test_model_card_template_renders_and_round_trips():
    card = render_model_card(
        "deltaworld_template.md",
        {"license": "apache-2.0", "library_name": "deltatok-hf", "tags": ["deltaworld"]},
        model_name="org/model",
        args={"preset": "released", "train_data": "synthetic", "model_config": "tiny", "learning_rate": 1e-4,
              "weight_decay": 0.4, "warmup_steps": 5000, "max_grad_norm": None, "num_frames": 8},
        summary={"use_best_of_many": True, "num_samples_train": 256, "effective_batch_size": 1024,
                 "num_processes": 8, "global_step": 10, "final_loss": 0.5},
        command="accelerate launch examples/train_deltaworld.py",
    )  # fmt: skip
    assert card.data.tags == ["deltaworld"] and "Best-of-Many over 256" in card.text and "{{" not in str(card)


# ------------------------------------------------------------------ the scripts


def test_train_deltatok_loss_decreases_saves_checkpoints_and_card(tmp_path):
    # Two synthetic videos = one fixed batch; the high LR without clipping makes the decrease reliable.
    output_dir = tmp_path / "deltatok"
    run_script(
        PYTHON, EXAMPLES / "train_deltatok.py", *TINY_DATA, "--num_synthetic_videos", "2", "--max_train_steps", "8",
        "--learning_rate", "3e-3", "--warmup_steps", "0", "--max_grad_norm", "0", "--checkpointing_steps", "4",
        "--output_dir", output_dir,
    )  # fmt: skip
    losses = list(read_summary(output_dir)["losses"].values())
    assert len(losses) == 8
    assert sum(losses[-2:]) / 2 < 0.9 * sum(losses[:2]) / 2, losses
    assert (output_dir / "checkpoint-4" / "model.safetensors").is_file()
    assert (output_dir / "checkpoint-8" / "optimizer.bin").is_file()
    model = DeltaTokModel.from_pretrained(output_dir)
    assert model.config.reconstruction_loss == "log_cosh"  # the released preset
    DeltaTokModel.from_pretrained(output_dir / "checkpoint-4")
    from huggingface_hub import ModelCard

    card = ModelCard.load(output_dir / "README.md")
    assert "deltatok" in card.data.tags and "| optimizer steps | 8 |" in card.text


def test_train_deltaworld_resume_latest_reproduces_uninterrupted_losses(tmp_path, tokenizer_dir):
    output_dir = tmp_path / "deltaworld"
    command = [
        PYTHON, EXAMPLES / "train_deltaworld.py", *TINY_DATA, "--num_frames", "5", "--tokenizer", tokenizer_dir,
        "--num_samples_train", "8", "--max_train_steps", "4", "--warmup_steps", "2", "--checkpointing_steps", "2",
        "--learning_rate", "1e-3", "--output_dir", output_dir,
    ]  # fmt: skip
    run_script(*command)
    uninterrupted = read_summary(output_dir)
    assert uninterrupted["backbone_calls"] > 0  # on the fly: the backbone runs every step
    final_weights = DeltaWorldForForecasting.from_pretrained(output_dir).predictor.state_dict()

    # Crash after step 2: only checkpoint-2 is left.
    for path in output_dir.iterdir():
        if path.name != "checkpoint-2":
            subprocess.run(["rm", "-rf", str(path)], check=True)
    run_script(*command, "--resume_from_checkpoint", "latest")
    resumed = read_summary(output_dir)
    assert resumed["global_step"] == 4 and sorted(resumed["losses"]) == ["3", "4"]
    for step in ("3", "4"):
        assert resumed["losses"][step] == pytest.approx(uninterrupted["losses"][step], rel=1e-5, abs=1e-7)
    assert (output_dir / "checkpoint-4").is_dir()
    reloaded = DeltaWorldForForecasting.from_pretrained(output_dir).predictor.state_dict()
    for name, tensor in final_weights.items():
        torch.testing.assert_close(reloaded[name], tensor, rtol=1e-5, atol=1e-6)


def test_token_cache_has_one_row_per_view(token_cache):
    from datasets import load_from_disk

    cache = load_from_disk(str(token_cache)).with_format("torch")
    assert len(cache) == 8  # 4 videos x 2 views
    assert cache[0]["delta_tokens"].shape == (5, 64) and cache[0]["timestamps"].shape == (5,)
    assert cache[0]["last_features"].shape == (4, 64)  # 32x32 frames = 4 patches
    assert json.loads((token_cache / "cache_info.json").read_text())["views_per_video"] == 2


def test_train_deltaworld_from_token_cache_never_runs_backbone_or_encoder(tmp_path, token_cache):
    output_dir = tmp_path / "cached"
    run_script(
        PYTHON, EXAMPLES / "train_deltaworld.py", "--token_cache", token_cache, "--train_batch_size", "4",
        "--num_samples_train", "8", "--max_train_steps", "3", "--warmup_steps", "0", "--checkpointing_steps", "10",
        "--output_dir", output_dir,
    )  # fmt: skip
    summary = read_summary(output_dir)
    assert summary["global_step"] == 3
    assert summary["backbone_calls"] == 0 and summary["encoder_calls"] == 0
    assert summary["initial_checksum"] != json.dumps(None)
    DeltaWorldForForecasting.from_pretrained(output_dir)


def test_two_process_data_parallel_ends_with_identical_parameters(tmp_path, token_cache):
    output_dir = tmp_path / "ddp"
    run_script(
        ACCELERATE, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--main_process_port",
        "29531", EXAMPLES / "train_deltaworld.py", "--token_cache", token_cache, "--train_batch_size", "2",
        "--num_samples_train", "8", "--max_train_steps", "3", "--warmup_steps", "0", "--learning_rate", "1e-3",
        "--checkpointing_steps", "10", "--write_rank_checksums", "--output_dir", output_dir,
    )  # fmt: skip
    summary = read_summary(output_dir)
    assert summary["num_processes"] == 2 and summary["effective_batch_size"] == 4
    checksums = [json.loads((output_dir / f"rank{rank}_checksum.json").read_text())["checksum"] for rank in (0, 1)]
    assert checksums[0] == checksums[1]
    assert checksums[0] != summary["initial_checksum"]  # and training did move them


@pytest.mark.slow
def test_best_of_many_covers_modes_that_the_deterministic_model_averages(tmp_path):
    output = tmp_path / "multimodality.json"
    tokenizer = ROOT / "src" / "deltatok_hf" / "assets" / "demo_model"
    extra = ["--tokenizer", tokenizer] if (tokenizer / "config.json").is_file() else []
    run_script(
        PYTHON, EXAMPLES / "multimodality_experiment.py", *extra, "--num_train_videos", "256", "--num_eval_videos",
        "64", "--max_train_steps", "300", "--output_json", output, timeout=1800,
    )  # fmt: skip
    results = json.loads(output.read_text())
    assert results["ratio_best_of_20_token_mse"] < 0.7, results
    assert results["best_of_many"]["mode_coverage"] > results["deterministic"]["mode_coverage"] + 0.2, results
