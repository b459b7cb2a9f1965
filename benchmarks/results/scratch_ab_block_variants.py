import torch, time, copy, sys
import torch.nn.functional as F
sys.path.insert(0,'.')
from _common import build_model
import torch._inductor.config as ic
torch.manual_seed(0); torch.set_num_threads(int(__import__("os").environ.get("THREADS","2")))
model = build_model('vitb')
tok32 = model.tokenizer
tok = copy.deepcopy(tok32).to(torch.bfloat16)
rope = tok.position_embeddings(256,256)
rope32 = tok32.position_embeddings(256,256)
S = int(sys.argv[1]) if len(sys.argv)>1 else 20
x32 = torch.randn(S,257,768)
x = x32.to(torch.bfloat16)
layer = tok.decoder_blocks[0].requires_grad_(False)
layer32 = tok32.decoder_blocks[0]
cos, sin = rope
# full-sequence tables: token row cos=1, sin=0; sign folded into sin for the flip formulation
half = cos.shape[-1]//2
cos_full = torch.cat((torch.ones(1, cos.shape[-1], dtype=cos.dtype), cos), 0)
sin_signed = torch.cat((-sin[:, :half], sin[:, half:]), -1)
sin_full = torch.cat((torch.zeros(1, cos.shape[-1], dtype=cos.dtype), sin_signed), 0)
def rope_full(t):  # t (B,H,L,D)
    flipped = t.unflatten(-1, (2, half)).flip(-2).flatten(-2)
    return torch.addcmul(t * cos_full, flipped, sin_full)
def lean(layer, h, manual_attention=False):
    a = layer.attention
    B, L, _ = h.shape
    n = layer.norm1(h)
    q = a.q_proj(n).view(B, L, 12, 64).transpose(1, 2)
    k = a.k_proj(n).view(B, L, 12, 64).transpose(1, 2)
    v = a.v_proj(n).view(B, L, 12, 64).transpose(1, 2)
    q = a.q_norm(rope_full(q)); k = a.k_norm(rope_full(k))
    if manual_attention:
        s = torch.matmul(q, k.transpose(-1, -2)).mul_(a.scaling)
        att = torch.matmul(s.softmax(-1), v)
    else:
        att = F.scaled_dot_product_attention(q, k, v, scale=a.scaling)
    g = torch.sigmoid(a.attn_gate(n)).transpose(1, 2).unsqueeze(-1)
    att = (att * g).transpose(1, 2).reshape(B, L, -1)
    h = torch.addcmul(h, a.o_proj(att), layer.layer_scale1.lambda1)
    n = layer.norm2(h)
    m = layer.mlp
    u = F.silu(m.gate_proj(n), inplace=True).mul_(m.up_proj(n))
    return torch.addcmul(h, m.down_proj(u), layer.layer_scale2.lambda1)
def bench(fs, rounds=int(__import__("os").environ.get("ROUNDS","6"))):
    res={k:[] for k in fs}; cpu={k:[] for k in fs}
    for _ in range(rounds):
        for k,f in fs.items():
            a=time.perf_counter(); c=time.process_time(); f(); res[k].append(time.perf_counter()-a); cpu[k].append(time.process_time()-c)
    return {k: dict(min_ms=round(min(v)*1e3,1), med_ms=round(sorted(v)[len(v)//2]*1e3,1), min_cpu_ms=round(min(cpu[k])*1e3,1), med_cpu_ms=round(sorted(cpu[k])[len(v)//2]*1e3,1)) for k,v in res.items()}
with torch.no_grad():
    ref32 = layer32(x32, rope32)
    def err(o): return round(((o.float()-ref32).pow(2).mean().sqrt()/ref32.pow(2).mean().sqrt()).item(),5)
    fs = {'eager': lambda: layer(x, rope), 'lean': lambda: lean(layer, x), 'lean_manual': lambda: lean(layer, x, True)}
    if 'compile' in sys.argv:
        ic.freezing=True
        c2 = copy.deepcopy(layer); c2.compile()
        t=time.perf_counter(); c2(x, rope); print('compile freezing', time.perf_counter()-t, flush=True)
        ic.freezing=False
        c1 = copy.deepcopy(layer); c1.compile()
        t=time.perf_counter(); c1(x, rope); print('compile default', time.perf_counter()-t, flush=True)
        fs |= {'compiled': lambda: c1(x, rope), 'frozen': lambda: c2(x, rope)}
    print('fp32 lean vs eager max diff', (lean(layer32, x32)-ref32).abs().max().item(), 'scale', ref32.abs().max().item())
    print('rel rms vs fp32', {k: err(f()) for k,f in fs.items()}, flush=True)
    for k, v in bench(fs).items(): print(k, v, flush=True)
