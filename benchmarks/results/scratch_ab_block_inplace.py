import torch, time, copy, sys, resource, os
sys.path.insert(0,'.')
from _common import build_model
from reference_rollout import plain_tokenizer_layer
torch.manual_seed(0); torch.set_num_threads(int(os.environ.get("THREADS","2")))
model = build_model('vitb')
dt = getattr(torch, os.environ.get("DT","bfloat16"))
tok = copy.deepcopy(model.tokenizer).to(dt)
rope = tok.position_embeddings(256,256)
x = torch.randn(20,257,768).to(dt)
layer = tok.decoder_blocks[0]
fs = {'plain (HEAD ops)': lambda: plain_tokenizer_layer(layer, x, *rope), 'new': lambda: layer(x, rope)}
res = {k: {'cpu':[], 'wall':[], 'faults':[], 'sys':[]} for k in fs}
with torch.no_grad():
    for f in fs.values(): f()
    for _ in range(int(os.environ.get("ROUNDS","8"))):
        for k,f in fs.items():
            r=resource.getrusage(resource.RUSAGE_SELF); w=time.perf_counter()
            f()
            w=time.perf_counter()-w; r2=resource.getrusage(resource.RUSAGE_SELF)
            res[k]['wall'].append(w); res[k]['cpu'].append(r2.ru_utime-r.ru_utime+r2.ru_stime-r.ru_stime)
            res[k]['sys'].append(r2.ru_stime-r.ru_stime); res[k]['faults'].append(r2.ru_minflt-r.ru_minflt)
med = lambda v: sorted(v)[len(v)//2]
for k,v in res.items():
    print(k, {m: (round(min(x)*1e3,1) if m!='faults' else min(x), round(med(x)*1e3,1) if m!='faults' else med(x)) for m,x in v.items()})
