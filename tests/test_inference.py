"""Inference speed paths: they change how results are computed, never the results (random weights: mechanics only)."""

import subprocess
import sys

import pytest
import torch
from transformers.models.dinov3_vit.modeling_dinov3_vit import apply_rotary_pos_emb

from deltatok_hf.inference import compile_for_inference, tune_cpu_allocator
from deltatok_hf.models.deltatok.modeling_deltatok import apply_patch_rope


def test_compiled_model_matches_eager_and_keeps_its_state_dict(tiny_world):
    frames = torch.randint(0, 256, (1, 3, 3, 32, 32), dtype=torch.uint8)
    kwargs = dict(timestamps=[0.0, 0.2, 0.4], future_timestamps=[0.6, 0.8], num_samples=3)
    eager = tiny_world.generate(frames, generator=torch.Generator().manual_seed(0), **kwargs)
    keys = list(tiny_world.state_dict())
    compile_for_inference(tiny_world)
    compiled = tiny_world.generate(frames, generator=torch.Generator().manual_seed(0), **kwargs)
    torch.testing.assert_close(compiled.future_features, eager.future_features, atol=1e-5, rtol=1e-4)
    assert list(tiny_world.state_dict()) == keys


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("num_prefix", [0, 1, 3])
def test_patch_rope_is_bit_identical_to_transformers_rope(dtype, num_prefix):
    generator = torch.Generator().manual_seed(0)
    num_patches, head_dim = 16, 8
    angles = torch.rand(num_patches, head_dim // 2, generator=generator) * 6.0
    cos, sin = torch.cat((angles, angles), -1).cos().to(dtype), torch.cat((angles, angles), -1).sin().to(dtype)
    query = torch.randn(2, 3, num_prefix + num_patches, head_dim, generator=generator).to(dtype)
    key = torch.randn(2, 3, num_prefix + num_patches, head_dim, generator=generator).to(dtype)
    expected_query, expected_key = apply_rotary_pos_emb(query, key, cos, sin)
    # Also through a transposed view, as the attention passes it (heads split out of a (batch, seq, hidden) output).
    transposed_query = query.transpose(1, 2).contiguous().transpose(1, 2)
    assert torch.equal(apply_patch_rope(transposed_query, cos, sin), expected_query)
    assert torch.equal(apply_patch_rope(key, cos, sin), expected_key)
    assert torch.equal(apply_patch_rope(query, cos, sin)[:, :, :num_prefix], query[:, :, :num_prefix])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_inference_blocks_compute_the_training_arithmetic_in_place_without_touching_their_input(tiny_tokenizer, dtype):
    tokenizer = tiny_tokenizer.to(dtype)
    cos, sin = tokenizer.position_embeddings(32, 32)
    hidden_states = torch.randn(3, 1 + cos.shape[0], tokenizer.config.hidden_size).to(dtype)
    original = hidden_states.clone()
    for block in (tokenizer.encoder_blocks[0], tokenizer.decoder_blocks[-1]):
        with_autograd = block(hidden_states, (cos, sin))  # out-of-place path (grad enabled)
        assert with_autograd.requires_grad
        with torch.no_grad():
            in_place = block(hidden_states, (cos, sin))
        assert torch.equal(in_place, with_autograd.detach())
        assert torch.equal(hidden_states, original)


@pytest.mark.slow  # a fresh interpreter importing the package: ~50 s on the shared 2-core machine
def test_tuned_allocator_leaves_forecasts_unchanged():
    # A subprocess, because the setting is process-wide and lasts until exit.
    script = """
import torch
from deltatok_hf import DeltaWorldConfig, DeltaWorldForForecasting
from deltatok_hf.inference import tune_cpu_allocator
torch.manual_seed(0)
model = DeltaWorldForForecasting(DeltaWorldConfig.tiny()).eval()
frames = torch.randint(0, 256, (1, 2, 3, 32, 32), dtype=torch.uint8)
def forecast():
    return model.generate(frames, timestamps=[0.0, 0.2], future_timestamps=[0.4, 0.6], num_samples=2,
                          generator=torch.Generator().manual_seed(0)).future_features
before = forecast()
applied = tune_cpu_allocator()
assert torch.equal(forecast(), before)
print("applied" if applied else "not glibc")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    expected = "applied" if sys.platform.startswith("linux") else "not glibc"
    assert result.stdout.strip().splitlines()[-1] == expected


@pytest.mark.parametrize("value", [-1, 2**31, 1.5, True])
def test_tune_cpu_allocator_rejects_a_bad_threshold(value):
    with pytest.raises(ValueError, match="trim_threshold_bytes"):
        tune_cpu_allocator(value)
