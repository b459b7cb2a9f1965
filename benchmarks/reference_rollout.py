"""A straightforward reference rollout, written the way the paper and the official evaluation code do it.

It uses the weights of a [`DeltaWorldForForecasting`] but none of its shortcuts:

* the backbone and the tokenizer encoder run over ALL frames of the clip, targets included (official
  `DeltaWorld.rollout_init -> _encode_frames`);
* the black frame goes through the backbone on every call (once per clip, as `backbone(zeros_like(frames[:, :1]))`);
* the context delta tokens are repeated per sample and the predictor projects the whole `(B·S, L, D)` context into
  keys/values at every step (no cache);
* tokenizer blocks are computed here with plain separate q/k/v/gate/up projections (`plain_tokenizer_layer`), so that
  run-time fusions added to the library code do not leak into the reference.

Run it to check that `generate` gives the same futures for the same noise:

    python benchmarks/reference_rollout.py --preset tiny
    python benchmarks/reference_rollout.py --preset vitb --size 256 --num-samples 4
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from transformers.models.dinov3_vit.modeling_dinov3_vit import apply_rotary_pos_emb

from _common import build_model, make_clip, make_noise, max_abs_diff


def plain_tokenizer_layer(layer, hidden_states: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """One `DeltaTokLayer` as written in the official `models/deltatok.py` blocks: separate projections, no fusion."""
    attention_module, mlp = layer.attention, layer.mlp
    batch_size, seq_len, hidden_size = hidden_states.shape
    heads, head_dim = attention_module.num_heads, attention_module.head_dim
    normed = layer.norm1(hidden_states)

    def split(states):  # (batch, seq, hidden) -> (batch, heads, seq, head_dim)
        return states.view(batch_size, seq_len, heads, head_dim).transpose(1, 2)

    query = split(attention_module.q_proj(normed))
    key = split(attention_module.k_proj(normed))
    value = split(attention_module.v_proj(normed))
    query, key = apply_rotary_pos_emb(query, key, cos, sin)
    if attention_module.q_norm is not None:
        query, key = attention_module.q_norm(query), attention_module.k_norm(key)
    attention = F.scaled_dot_product_attention(query, key, value, scale=attention_module.scaling)
    if attention_module.attn_gate is not None:
        attention = attention * torch.sigmoid(attention_module.attn_gate(normed)).transpose(1, 2).unsqueeze(-1)
    attention = attention_module.o_proj(attention.transpose(1, 2).reshape(batch_size, seq_len, hidden_size))
    hidden_states = hidden_states + layer.layer_scale1(attention)
    normed = layer.norm2(hidden_states)
    if mlp.gate_proj is not None:
        mlp_out = mlp.down_proj(mlp.act_fn(mlp.gate_proj(normed)) * mlp.up_proj(normed))
    else:
        mlp_out = mlp.down_proj(mlp.act_fn(mlp.up_proj(normed)))
    return hidden_states + layer.layer_scale2(mlp_out)


def plain_encode(tokenizer, previous, current, rope):
    """`g(x_{t-1}, x_t)` for `(batch, N, D)` pairs -> `(batch, D)`."""
    cos, sin = rope
    batch_size, _, hidden_size = current.shape
    hidden_states = torch.cat(
        (
            tokenizer.z_embed.weight[None].expand(batch_size, 1, hidden_size),
            previous + tokenizer.xy_embed.weight[0],
            current + tokenizer.xy_embed.weight[1],
        ),
        dim=1,
    )
    cos, sin = torch.cat((cos, cos), dim=-2), torch.cat((sin, sin), dim=-2)
    for layer in tokenizer.encoder_blocks:
        hidden_states = plain_tokenizer_layer(layer, hidden_states, cos, sin)
    return tokenizer.norm(hidden_states[:, 0])


def plain_decode(tokenizer, delta_tokens, previous, rope):
    """`h(x_{t-1}, z_t)` for `(batch, D)` tokens and `(batch, N, D)` features -> `(batch, N, D)`."""
    hidden_states = torch.cat((delta_tokens[:, None].to(previous.dtype), previous), dim=1)
    for layer in tokenizer.decoder_blocks:
        hidden_states = plain_tokenizer_layer(layer, hidden_states, *rope)
    return hidden_states[:, 1:]


@torch.no_grad()
def reference_rollout(model, frames: torch.Tensor, timestamps: torch.Tensor, num_context: int, noise: torch.Tensor):
    """
    Args:
        frames: the WHOLE clip `(batch, num_context + num_future, 3, H, W)`, RGB 0..255 (targets are encoded too).
        timestamps: `(batch, num_context + num_future)` seconds.
        noise: `(batch, num_samples, num_future, Dp)` noise queries.
    Returns:
        `(future_features (batch, samples, num_future, N, D), future_delta_tokens (batch, samples, num_future, D))`.
    """
    tokenizer, predictor = model.tokenizer, model.predictor
    batch_size, num_frames = frames.shape[:2]
    height, width = frames.shape[-2:]
    num_samples, num_future = noise.shape[1], noise.shape[2]
    dtype = predictor.head.weight.dtype

    # Backbone over all frames, then over a black frame (one per clip), every call.
    features = tokenizer.extract_features(frames)  # (B, T, N, D)
    black = tokenizer.extract_features(torch.zeros_like(frames[:, :1]))[:, 0]  # (B, N, D)
    rope = tokenizer.position_embeddings(height, width, device=frames.device)
    # Encoder over every pair of the clip, targets included (offline tokenisation, one batched call).
    previous = torch.cat((black[:, None], features[:, :-1]), dim=1)
    delta_tokens = plain_encode(tokenizer, previous.flatten(0, 1), features.flatten(0, 1), rope)
    delta_tokens = delta_tokens.unflatten(0, (batch_size, num_frames)).to(dtype)  # (B, T, D)

    # Expand per sample (sample index fastest) and roll out.
    context = delta_tokens[:, :num_context].repeat_interleave(num_samples, 0)  # (B·S, L, D)
    context_times = timestamps[:, :num_context].repeat_interleave(num_samples, 0)
    current = features[:, num_context - 1].repeat_interleave(num_samples, 0)  # (B·S, N, D)
    all_times = timestamps.repeat_interleave(num_samples, 0)
    decoded, tokens = [], []
    for step in range(num_future):
        queries = noise[:, :, step].reshape(batch_size * num_samples, 1, -1).to(dtype)
        query_times = all_times[:, num_context + step : num_context + step + 1]
        # The predictor projects the full context to keys/values at every step.
        token = predictor(queries, query_times, context=context, context_timestamps=context_times)  # (B·S, 1, D)
        current = plain_decode(tokenizer, token[:, 0], current, rope)
        decoded.append(current)
        tokens.append(token[:, 0])
        context = torch.cat((context, token), dim=1)
        context_times = torch.cat((context_times, query_times), dim=1)
    future_features = torch.stack(decoded, 1).unflatten(0, (batch_size, num_samples))
    future_tokens = torch.stack(tokens, 1).unflatten(0, (batch_size, num_samples))
    return future_features, future_tokens


def ours(model, frames, timestamps, num_context: int, noise: torch.Tensor):
    """The library path on the same inputs: only the context frames are passed."""
    output = model.generate(
        frames=frames[:, :num_context],
        timestamps=timestamps[:, :num_context],
        future_timestamps=timestamps[:, num_context:],
        num_samples=noise.shape[1],
        noise=noise,
    )
    return output.future_features, output.future_delta_tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=["tiny", "vitb"], default="tiny")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--num-context", type=int, default=4)
    parser.add_argument("--num-future", type=int, default=3)
    parser.add_argument("--num-samples", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    model = build_model(args.preset, args.device)
    frames, timestamps = make_clip(args.batch_size, args.num_context + args.num_future, args.size, args.device)
    noise = make_noise(model, args.batch_size, args.num_samples, args.num_future, args.device)
    reference_features, reference_tokens = reference_rollout(model, frames, timestamps, args.num_context, noise)
    our_features, our_tokens = ours(model, frames, timestamps, args.num_context, noise)
    print(f"max |Δ| features: {max_abs_diff(our_features, reference_features):.3e}")
    print(f"max |Δ| tokens:   {max_abs_diff(our_tokens, reference_tokens):.3e}")
    print(f"feature scale (max |x|): {reference_features.abs().max().item():.3e}")


if __name__ == "__main__":
    main()
