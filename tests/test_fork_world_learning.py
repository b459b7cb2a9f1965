"""Learning proven on pixels: Best-of-Many DeltaWorld forks where the fork world forks; the deterministic one cannot.

Runs `examples/fork_world_experiment.py` with the settings of the examples/README table and asserts the issue's three
thresholds. Synthetic data, random-init frozen backbone: this proves the mechanics of Best-of-Many, not model quality.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "fork_world_experiment.py"
SUBPROCESS_ENV = {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
# The README table's settings (its defaults). Fewer clips would save little: the CPU time is in the training steps,
# which the tokenizer needs to start using its token; 256 / 32 clips took the same 216 CPU seconds and left the
# Best-of-Many coverage (0.94) closer to the 0.9 bound than the 64 held-out clips do (0.97).
README_RUN = ()


@pytest.mark.slow
def test_best_of_many_covers_every_branch_in_decoded_pixels_and_the_deterministic_model_one_at_most(tmp_path):
    output = tmp_path / "fork_world.json"
    command = [sys.executable, str(SCRIPT), *README_RUN, "--output_json", str(output)]
    result = subprocess.run(
        command, cwd=ROOT, env={**os.environ, **SUBPROCESS_ENV}, capture_output=True, text=True, timeout=3600
    )
    assert result.returncode == 0, f"{command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    results = json.loads(output.read_text())
    bom, deterministic = results["best_of_many"], results["deterministic"]

    # The premise: the trained DeltaTok keeps the branches apart after decoding, and the RGB decoder + pixel reader
    # name the branch of (nearly) every true future.
    assert results["tokenizer"]["branch_separation_over_reconstruction_error"] > 3, results["tokenizer"]
    assert results["rgb_decoder"]["reads_true_branch_from_decoded_reconstructions"] > 0.9, results["rgb_decoder"]

    # 1. Best-of-20 error of the decoded features: at most half the deterministic model's.
    assert results["ratio_best_of_20_feature_mse"] <= 0.5, results
    # 2. Mode coverage read from decoded RGB: >= 90 % for Best-of-Many; one forecast covers at most 1 of 3 branches
    #    (1/K), and an average of the branches covers none. Switching Best-of-Many off fails the first bound.
    assert bom["rgb_mode_coverage"] >= 0.9, bom
    assert deterministic["rgb_mode_coverage"] <= 1 / 3 + 1e-6, deterministic
    # 3. Energy score of the decoded features: lower (better) for Best-of-Many.
    assert bom["energy_score"] < deterministic["energy_score"], (bom, deterministic)
