"""Training survives `kill -9`: a run killed mid-step and then again during a checkpoint save, resumed each time with
`--resume_from_checkpoint latest`, ends with the same `model.safetensors`, byte for byte, as a run never interrupted.

Each case runs the console command (`deltatok-hf train-deltatok` / `train-deltaworld`, on frames and on a token cache)
as a subprocess on CPU with a fixed seed: 6 optimizer steps, a checkpoint every 2, 3 batches per epoch (so checkpoints
fall mid-epoch and at an epoch boundary). The interrupted lineage is: run 1 is killed with SIGKILL once step 3 is
logged (inside step 4, with `checkpoint-2` on disk); run 2 resumes from `checkpoint-2` and is killed as soon as
`checkpoint-4.tmp` appears, i.e. while Accelerate writes into it; at that moment `latest` must still be
`checkpoint-2`; run 3 resumes from it, removes the half-written folder and finishes. Random-weight tiny models: this
proves the mechanics of resuming, nothing about quality.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deltatok_hf.training import CacheTokensArguments, cache_delta_tokens, resolve_resume_checkpoint
from test_training import tokenizer_dir  # noqa: F401  (the module-scoped fixture: a saved random tiny DeltaTok)

pytestmark = pytest.mark.slow

COMMAND = Path(sys.executable).with_name("deltatok-hf")
ENV = {**os.environ, "ACCELERATE_USE_CPU": "1", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
TINY_RUN = [
    "--train_data", "synthetic", "--frame_size", "32", "--num_synthetic_videos", "6", "--train_batch_size", "2",
    "--max_train_steps", "6", "--checkpointing_steps", "2", "--warmup_steps", "2", "--logging_steps", "1",
    "--seed", "0",
]  # fmt: skip
RUN_TIMEOUT = 600


def start(arguments: list, output_dir: Path, log_name: str) -> tuple[subprocess.Popen, Path]:
    log = output_dir.parent / f"{output_dir.name}-{log_name}.log"
    with open(log, "w") as handle:  # the child keeps its own descriptor
        process = subprocess.Popen(
            [str(COMMAND), *map(str, arguments), "--output_dir", str(output_dir)],
            stdout=handle, stderr=subprocess.STDOUT, env=ENV,
        )  # fmt: skip
    return process, log


def finish(process: subprocess.Popen, log: Path) -> None:
    assert process.wait(timeout=RUN_TIMEOUT) == 0, log.read_text()[-6000:]


def kill_when(process: subprocess.Popen, log: Path, condition, what: str) -> None:
    """SIGKILL `process` the moment `condition()` holds (polled every millisecond)."""
    deadline = time.monotonic() + RUN_TIMEOUT
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the run ended (code {process.returncode}) before {what}:\n{log.read_text()[-4000:]}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.001)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=60) == -signal.SIGKILL


@pytest.fixture(scope="module")
def token_cache(tokenizer_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("cache") / "tokens"
    cache_delta_tokens(
        CacheTokensArguments(
            output_dir=str(path), tokenizer=str(tokenizer_dir), num_frames=4, frame_size=32, num_synthetic_videos=6,
            batch_size=6,
        )
    )  # fmt: skip
    return path


CASES = {
    "deltatok": lambda tokenizer, cache: ["train-deltatok", *TINY_RUN],
    "deltaworld-frames": lambda tokenizer, cache: [
        "train-deltaworld", *TINY_RUN, "--num_frames", "4", "--tokenizer", tokenizer, "--num_samples_train", "4",
    ],
    "deltaworld-token-cache": lambda tokenizer, cache: [
        "train-deltaworld", *TINY_RUN, "--token_cache", cache, "--num_samples_train", "4",
    ],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_killed_mid_step_and_mid_save_then_resumed_ends_bitwise_identical(case, tmp_path, tokenizer_dir, token_cache):
    arguments = CASES[case](tokenizer_dir, token_cache)
    reference_dir, interrupted_dir = tmp_path / "uninterrupted", tmp_path / "interrupted"
    # The uninterrupted run goes on in the background meanwhile: results do not depend on timing.
    reference = start(arguments, reference_dir, "reference")

    # Run 1: killed inside step 4 ("step 3" is logged once step 3 is done; checkpoint-2 is complete on disk).
    process, log = start(arguments, interrupted_dir, "run1")
    kill_when(process, log, lambda: "step 3: loss" in log.read_text(), "step 3 was logged")
    assert not (interrupted_dir / "model.safetensors").exists()
    assert resolve_resume_checkpoint("latest", interrupted_dir).name == "checkpoint-2"

    # Run 2: resumed, then killed while checkpoint-4 is being written.
    resume = [*arguments, "--resume_from_checkpoint", "latest"]
    process, log = start(resume, interrupted_dir, "run2")
    temporary = interrupted_dir / "checkpoint-4.tmp"
    kill_when(process, log, temporary.exists, "checkpoint-4.tmp appeared")
    assert "Resuming from" in log.read_text() and "checkpoint-2" in log.read_text()
    assert temporary.is_dir() and not (interrupted_dir / "checkpoint-4").exists()  # killed during the save
    assert resolve_resume_checkpoint("latest", interrupted_dir).name == "checkpoint-2"  # never the half-written one

    # Run 3: resumed to the end.
    process, log = start(resume, interrupted_dir, "run3")
    finish(process, log)
    finish(*reference)
    assert not temporary.exists() and (interrupted_dir / "checkpoint-6" / "trainer_state.json").is_file()
    resumed = json.loads((interrupted_dir / "train_summary.json").read_text())
    uninterrupted = json.loads((reference_dir / "train_summary.json").read_text())
    assert resumed["resumed_from"].endswith("checkpoint-2") and uninterrupted["resumed_from"] is None
    assert resumed["losses"] == uninterrupted["losses"] and len(resumed["losses"]) == 6
    final = (interrupted_dir / "model.safetensors").read_bytes()
    assert final == (reference_dir / "model.safetensors").read_bytes()  # bit for bit
    if case == "deltaworld-token-cache":
        assert resumed["backbone_calls"] == 0
