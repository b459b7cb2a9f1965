import torch, copy, sys, os, time, resource
sys.path.insert(0,'.')
from _common import build_model
from profile_bf16 import instrumented, attribute
from torch.profiler import profile, ProfilerActivity
from collections import defaultdict
if os.environ.get("TUNE"):
    from deltatok_hf.inference import tune_cpu_allocator; print('tuned', tune_cpu_allocator())
torch.manual_seed(0); torch.set_num_threads(1)
model = build_model('vitb').to(torch.bfloat16)
tok = model.tokenizer
rope = tok.position_embeddings(256,256)
x = torch.randn(20,256,768).to(torch.bfloat16); z = torch.randn(20,768).to(torch.bfloat16)
# two decoder blocks through decode (keeps the instrumented hooks meaningful)
tok.decoder_blocks = tok.decoder_blocks[:2]
rounds=[]
with torch.no_grad():
    tok.decode(z, x, rope)
    for _ in range(3):
        with instrumented(model), profile(activities=[ProfilerActivity.CPU]) as p:
            u0=resource.getrusage(resource.RUSAGE_SELF); tok.decode(z, x, rope); u=resource.getrusage(resource.RUSAGE_SELF)
        a=attribute(p.events()); rounds.append(a)
        print('faults', u.ru_minflt-u0.ru_minflt, 'sys', round(u.ru_stime-u0.ru_stime,3), 'user', round(u.ru_utime-u0.ru_utime,3), flush=True)
keys=sorted({k for r in rounds for k in r})
mins={k: min(r.get(k,0) for r in rounds) for k in keys}
tot=sum(mins.values())
by=defaultdict(float)
for k,v in mins.items(): by[k.split('/')[1]]+=v
print('total min-sum ms', round(tot,1))
print({k: f"{v:.1f} ms {v/tot:.1%}" for k,v in sorted(by.items(), key=lambda kv:-kv[1])})
