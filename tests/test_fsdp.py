"""DeltaWorld trains under FSDP (torch's FSDP2, `fully_shard`), checked on CPU with two processes.

`accelerate launch --use_fsdp` cannot show this on a CPU: with `ACCELERATE_USE_CPU=1` it silently runs
`DistributedType.MULTI_CPU` (the model comes back wrapped in `DistributedDataParallel`), and without it each process
runs alone (`DistributedType.NO`, both rank 0). examples/README.md gives the command and config that run FSDP on GPUs.
torch's FSDP2 itself does shard on a CPU device mesh over gloo, so this test runs this file under `torchrun` as a
2-process worker: every predictor block (`DeltaWorldLayer`) and the root are `fully_shard`ed (parameters become
DTensor shards), the optimizer is
`deltatok_hf.training.build_optimizer` over the sharded parameters (the same AdamW groups and warm-up as the training
commands), and each rank trains on its half of every batch of cached-token-shaped inputs.

Asserted: the parameters really are sharded, a 3-step rollout with the sharded model equals the single-process one,
both ranks end with the same full weights, and the losses of every step and the gradients of the first match a
single-process run on the whole batches within float tolerance. The predictor
is the deterministic one (one learned query) so that no noise draw differs between one and two processes; Best-of-Many
adds only a per-rank noise draw to the same computation. Random weights, random tokens: mechanics, not quality.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

NUM_STEPS = 3
GLOBAL_BATCH = 4
NUM_FRAMES = 5
LEARNING_RATE = 1e-2
WEIGHT_DECAY = 0.4


def build_model():
    from deltatok_hf import DeltaWorldConfig, DeltaWorldForForecasting

    torch.manual_seed(0)
    model = DeltaWorldForForecasting(DeltaWorldConfig.tiny(use_best_of_many=False))
    model.tokenizer.requires_grad_(False)
    return model.train()


def batches(hidden_size: int) -> list[dict]:
    """`NUM_STEPS` batches of `GLOBAL_BATCH` token sequences, the same in every process."""
    generator = torch.Generator().manual_seed(1)
    timestamps = torch.arange(NUM_FRAMES, dtype=torch.float32).mul(0.1).expand(GLOBAL_BATCH, NUM_FRAMES)
    return [
        {"delta_tokens": torch.randn(GLOBAL_BATCH, NUM_FRAMES, hidden_size, generator=generator), "timestamps": timestamps}
        for _ in range(NUM_STEPS)
    ]


def rollout(model) -> torch.Tensor:
    """A 3-step `generate` from fixed context tokens (no decoding), in eval mode: what inference under FSDP runs."""
    generator = torch.Generator().manual_seed(2)
    hidden_size = model.config.tokenizer_config.hidden_size
    tokens = torch.randn(2, 3, hidden_size, generator=generator)
    times = torch.tensor([0.0, 0.1, 0.2]).expand(2, -1)
    model.eval()
    with torch.no_grad():
        output = model.generate(delta_tokens=tokens, timestamps=times, future_timestamps=[0.3, 0.4, 0.5], decode=False)
    model.train()
    return output.future_delta_tokens


def train_steps(model, rank: int = 0, world_size: int = 1, all_reduce=None) -> tuple[list[float], dict]:
    """
    AdamW steps on this rank's rows of every batch. Returns the loss of every step averaged over ranks, and the full
    gradients of the first step (gathered from the shards under FSDP).
    """
    from deltatok_hf.training import build_lr_scheduler, build_optimizer

    optimizer = build_optimizer(model, LEARNING_RATE, WEIGHT_DECAY)
    lr_scheduler = build_lr_scheduler(optimizer, warmup_steps=0)
    rows = GLOBAL_BATCH // world_size
    losses, first_gradients = [], None
    for batch in batches(model.config.tokenizer_config.hidden_size):
        local = {key: value[rank * rows : (rank + 1) * rows] for key, value in batch.items()}
        loss = model(**local).loss  # mean over this rank's rows; FSDP averages the gradients over ranks
        loss.backward()
        if first_gradients is None:
            first_gradients = {
                name: p.grad.full_tensor() if hasattr(p.grad, "full_tensor") else p.grad.clone()
                for name, p in model.named_parameters()
                if p.requires_grad
            }
        optimizer.step()
        lr_scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        value = loss.detach().clone()
        if all_reduce is not None:
            all_reduce(value)
            value /= world_size
        losses.append(value.item())
    return losses, first_gradients


def worker(output_dir: Path) -> None:
    """Run under `torchrun --nproc_per_node 2`: train the sharded model, write losses, checksums and full weights."""
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard, register_fsdp_forward_method
    from torch.distributed.tensor import DTensor

    from deltatok_hf.training import parameter_checksum

    dist.init_process_group("gloo")
    rank, world_size = dist.get_rank(), dist.get_world_size()
    mesh = init_device_mesh("cpu", (world_size,))

    def sharded_model():
        model = build_model()
        for block in model.predictor.blocks:
            # Every predictor block is its own unit (what TRANSFORMER_BASED_WRAP with DeltaWorldLayer does): in training
            # the block projects the context keys/values inside its forward. A rollout projects them once per clip
            # through `block.project_context`, outside forward, so that method is registered to unshard too.
            fully_shard(block, mesh=mesh)
            register_fsdp_forward_method(block, "project_context")
        fully_shard(model, mesh=mesh)
        register_fsdp_forward_method(model, "generate")  # the root's parameters (predictor norm and head) for rollouts
        return model

    model = sharded_model()
    rollout_tokens = rollout(model)  # every rank runs the same rollout
    # FSDP2 leaves the root unit unsharded after a forward (a backward usually follows), so after a rollout its
    # parameters are the full tensors, not the DTensor shards: an optimizer built now would hold the wrong tensors and
    # the later steps would differ from the single-process run (they did, before this call).
    model.reshard()
    sharded = all(isinstance(p, DTensor) for p in model.parameters())
    local_elements = sum(p.to_local().numel() for p in model.parameters())
    losses, first_gradients = train_steps(model, rank, world_size, all_reduce=dist.all_reduce)
    checksum = parameter_checksum(model)  # gathers the shards: every rank calls it
    report = {
        "rank": rank, "sharded": sharded, "local_elements": local_elements, "losses": losses, "checksum": checksum,
        "rollout": rollout_tokens.tolist(),
    }  # fmt: skip
    (output_dir / f"rank{rank}.json").write_text(json.dumps(report))
    if rank == 0:
        torch.save(first_gradients, output_dir / "first_gradients.pt")
    dist.barrier()
    dist.destroy_process_group()


@pytest.mark.slow
def test_two_process_fsdp2_matches_a_single_process_run(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    command = [
        str(Path(sys.executable).with_name("torchrun")), "--nproc_per_node", "2", "--master_port", "29547",
        str(Path(__file__).resolve()), "--output_dir", str(tmp_path),
    ]  # fmt: skip
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    ranks = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]

    model = build_model()
    total_elements = sum(p.numel() for p in model.parameters())
    single_rollout = rollout(model)
    single_losses, single_gradients = train_steps(model)

    assert all(rank["sharded"] for rank in ranks)
    assert all(rank["local_elements"] < total_elements for rank in ranks)  # each rank holds a shard, not a copy
    assert ranks[0]["checksum"] == ranks[1]["checksum"]  # the same full weights on both ranks
    assert ranks[0]["losses"] == ranks[1]["losses"]
    assert ranks[0]["losses"] == pytest.approx(single_losses, rel=1e-5, abs=1e-6)
    assert single_losses[-1] < single_losses[0]  # the steps did train
    # Inference with every predictor block sharded gives the single-process rollout.
    for rank in ranks:
        torch.testing.assert_close(torch.tensor(rank["rollout"]), single_rollout, rtol=1e-5, atol=1e-6)
    # Gradients, not weights, are compared elementwise: many gradients here are ~1e-10 (LayerScale starts at 1e-5),
    # and Adam turns their reduction-order noise into whole +-lr steps, so the weights drift apart by up to ~lr per
    # step while the losses above still agree to 1e-5.
    sharded_gradients = torch.load(tmp_path / "first_gradients.pt")
    assert sharded_gradients.keys() == single_gradients.keys()
    for name, gradient in single_gradients.items():
        scale = gradient.abs().max().item()
        torch.testing.assert_close(sharded_gradients[name], gradient, rtol=1e-4, atol=1e-5 * scale, msg=name)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="2-process FSDP2 worker of tests/test_fsdp.py (run with torchrun).")
    parser.add_argument("--output_dir", type=Path, required=True)
    worker(parser.parse_args().output_dir)
