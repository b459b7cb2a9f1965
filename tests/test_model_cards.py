"""Every model card the project ships or writes validates offline (`check_card_metadata`): the released cards under
`model_cards/`, the bundled demo model's, and those written by the training commands and the converter; the templates
are package data that a wheel install finds."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from deltatok_hf import DeltaTokConfig, DeltaTokModel
from deltatok_hf.cli import main as cli_main
from deltatok_hf.training import build_card_data, check_card_metadata, hub_repo_id, render_model_card, template_names

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared"
RELEASED_CARDS = sorted((ROOT / "model_cards").rglob("*.md"))
DEMO_CARD = ROOT / "src" / "deltatok_hf" / "assets" / "demo_model" / "README.md"
TINY_RUN = ["--train_data", "synthetic", "--frame_size", "32", "--num_synthetic_videos", "2", "--train_batch_size", "2",
            "--max_train_steps", "1", "--checkpointing_steps", "10"]  # fmt: skip

# Values for every variable the templates use (what the commands pass).
TEMPLATE_VALUES = {
    "model_name": "org/model",
    "args": {"preset": "released", "train_data": "synthetic", "model_config": "tiny", "learning_rate": 1e-4,
             "weight_decay": 0.4, "warmup_steps": 5000, "max_grad_norm": None, "num_frames": 8, "frame_size": 256,
             "seed": 0, "num_samples_train": 32, "num_synthetic_videos": 256, "reconstruction_loss": "log_cosh"},
    "summary": {"use_best_of_many": True, "num_samples_train": 256, "effective_batch_size": 1024, "num_processes": 8,
                "global_step": 10, "final_loss": 0.5},
    "tokenizer": "org/tokenizer",
    "command": "deltatok-hf train-deltaworld",
    "minutes": "1.0",
    "tokenizer_summary": {"global_step": 3, "losses": {"1": 0.2}, "final_loss": 0.1},
    "world_summary": {"global_step": 3, "losses": {"1": 0.9}, "final_loss": 0.7},
    "num_parameters": 1000,
    "kind": "DeltaTokModel",
    "sources": {"deltatok": "pytorch_model.bin"},
    "report_summary": "converted 3 tensors",
    "fetched": ["the backbone from `facebook/dinov3-vitb16-pretrain-lvd1689m`"],
}  # fmt: skip


def test_released_cards_exist():
    assert {path.name for path in RELEASED_CARDS} >= {"deltatok-kinetics.md", "deltaworld-kinetics.md"}


@pytest.mark.parametrize("path", RELEASED_CARDS, ids=lambda path: path.name)
def test_released_card_validates(path):
    metadata = check_card_metadata(path, require_base_model=True)
    assert metadata["library_name"] == "deltatok-hf" and metadata["license"] == "apache-2.0"


def test_bundled_demo_model_card_validates():
    metadata = check_card_metadata(DEMO_CARD)
    assert metadata["pipeline_tag"] == "other" and "not-for-evaluation" in metadata["tags"]


@pytest.mark.parametrize("template_name", template_names())
def test_every_packaged_template_renders_a_valid_card(template_name):
    model_type = "deltatok" if template_name.startswith("deltatok") else "deltaworld"
    card_data = build_card_data(model_type, tags=[model_type], base_model="org/base", datasets=["org/videos"])
    card = render_model_card(template_name, card_data, **TEMPLATE_VALUES)
    metadata = check_card_metadata(str(card), require_base_model=True, require_datasets=True)
    assert metadata["base_model"] == "org/base" and metadata["datasets"] == ["org/videos"]


@pytest.mark.parametrize(
    "header, message",
    [
        ("library_name: deltatok-hf\nlicense: apache-2.0\ntags: [a]\n", "'pipeline_tag' is missing"),
        ("library_name: deltatok-hf\nlicense: [mit, bsd]\npipeline_tag: other\ntags: [a]\n", "'license' must be a string"),
        ("library_name: deltatok-hf\nlicense: apache-2.0\npipeline_tag: other\ntags: [a]\n", "'base_model' is missing"),
    ],
)
def test_invalid_card_metadata_is_named(header, message):
    with pytest.raises(ValueError, match=message):
        check_card_metadata(f"---\n{header}---\n\n# A card\n", require_base_model=True)
    with pytest.raises(ValueError, match="no YAML metadata header"):
        check_card_metadata("# A card without metadata\n")


def test_only_hub_ids_become_base_model_or_datasets(tmp_path):
    assert hub_repo_id("org/videos") == "org/videos"
    assert hub_repo_id("synthetic") is None and hub_repo_id(None) is None
    assert hub_repo_id(str(tmp_path)) is None and hub_repo_id("./videos/train") is None


def test_cards_written_by_the_training_commands_validate(tmp_path):
    torch.manual_seed(0)
    tokenizer = tmp_path / "tokenizer"
    DeltaTokModel(DeltaTokConfig.tiny()).save_pretrained(tokenizer)
    assert cli_main(["train-deltatok", *TINY_RUN, "--output_dir", str(tmp_path / "deltatok")]) == 0
    assert cli_main(["train-deltaworld", *TINY_RUN, "--num_frames", "3", "--num_samples_train", "2",
                     "--tokenizer", str(tokenizer), "--output_dir", str(tmp_path / "deltaworld")]) == 0  # fmt: skip
    deltatok = check_card_metadata(tmp_path / "deltatok" / "README.md")
    deltaworld = check_card_metadata(tmp_path / "deltaworld" / "README.md")
    assert deltatok["pipeline_tag"] == "feature-extraction" and "deltatok" in deltatok["tags"]
    assert deltaworld["pipeline_tag"] == "other" and "deltaworld" in deltaworld["tags"]
    # Random tiny backbone, local tokenizer, synthetic data: no Hub id to name, so none is invented.
    assert "base_model" not in deltatok and "datasets" not in deltaworld


def test_card_written_by_the_converter_validates(tmp_path):
    weights = SHARED / "reference" / "reference_tiny_weights.safetensors"
    if not weights.is_file():
        pytest.skip(f"official reference weights not found at {weights}")
    output = tmp_path / "converted"
    assert cli_main(["convert", "--weights", str(weights), "--preset", "tiny", "--output", str(output)]) == 0
    metadata = check_card_metadata(output / "README.md", require_base_model=True)
    assert metadata["tags"] == ["deltaworld", "converted"] and metadata["pipeline_tag"] == "other"
    assert "reference_tiny_weights.safetensors" in (output / "README.md").read_text()


@pytest.mark.slow  # a wheel build: ~10 s alone, ~40 s on the shared 2 cores
def test_a_wheel_ships_the_templates_and_finds_them_when_installed(tmp_path):
    # Built from a copy, so that concurrent builds never share a build/ folder in the checkout.
    source = tmp_path / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "assets")  # the large assets are not under test
    shutil.copytree(ROOT / "src", source / "src", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"),
         str(source)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("deltatok_hf-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {f"deltatok_hf/training/templates/{name}" for name in template_names()} <= set(names)
    installed = tmp_path / "installed"
    zipfile.ZipFile(wheel).extractall(installed)
    # Import from the unpacked wheel (first on sys.path), not from the checkout.
    probe = (
        f"import sys; sys.path.insert(0, {str(installed)!r}); import deltatok_hf.training.cards as cards; "
        "assert cards.__file__.startswith(sys.path[0]), cards.__file__; print(','.join(cards.template_names()))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().split(",") == template_names()


# Tiny values for the demo script's size options; only those its `--help` lists are passed, so the test follows the
# script as it gains or drops stages.
DEMO_TINY_OPTIONS = {
    "--frame_size": 64, "--tokenizer_steps": 2, "--decoder_steps": 2, "--world_steps": 2, "--batch_size": 2,
    "--num_synthetic_videos": 4, "--num_eval_items": 2, "--clip_views": 2, "--num_samples_train": 2, "--num_samples": 2,
}  # fmt: skip


@pytest.mark.slow  # tiny training stages in a subprocess (~20-60 s on 2 cores)
def test_card_written_by_the_demo_model_script_validates(tmp_path):
    script = ROOT / "examples" / "train_demo_model.py"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1", "HF_HUB_OFFLINE": "1"}
    usage = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, env=env, timeout=300)
    assert usage.returncode == 0, usage.stderr[-3000:]
    tiny = [str(part) for option, value in DEMO_TINY_OPTIONS.items() if option in usage.stdout for part in (option, value)]
    output = tmp_path / "demo_model"
    command = [sys.executable, str(script), "--output_dir", str(output), "--work_dir", str(tmp_path / "work"), *tiny]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=ROOT, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    metadata = check_card_metadata(output / "README.md")
    assert metadata["pipeline_tag"] == "other" and "not-for-evaluation" in metadata["tags"]
    # The committed card says what the script writes, header included.
    assert metadata == check_card_metadata(DEMO_CARD)
