"""compile_for_inference: the compiled model forecasts the same futures (random weights: mechanics only)."""

import torch

from deltatok_hf.inference import compile_for_inference


def test_compiled_model_matches_eager_and_keeps_its_state_dict(tiny_world):
    frames = torch.randint(0, 256, (1, 3, 3, 32, 32), dtype=torch.uint8)
    kwargs = dict(timestamps=[0.0, 0.2, 0.4], future_timestamps=[0.6, 0.8], num_samples=3)
    eager = tiny_world.generate(frames, generator=torch.Generator().manual_seed(0), **kwargs)
    keys = list(tiny_world.state_dict())
    compile_for_inference(tiny_world)
    compiled = tiny_world.generate(frames, generator=torch.Generator().manual_seed(0), **kwargs)
    torch.testing.assert_close(compiled.future_features, eager.future_features, atol=1e-5, rtol=1e-4)
    assert list(tiny_world.state_dict()) == keys
