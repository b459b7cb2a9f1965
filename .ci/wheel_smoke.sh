#!/usr/bin/env bash
# Smoke test of a real wheel install (not editable), run from outside the checkout: the demo, a 2-step training
# command that writes a model card, and an evaluate metric loaded from the installed package.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
python3 -m venv "$WORK/venv"
. "$WORK/venv/bin/activate"
pip install -q --upgrade pip
pip install -q -c "$ROOT/constraints.txt" torch
pip wheel -q --no-deps -w "$WORK/dist" "$ROOT"
WHEEL="$(ls "$WORK"/dist/deltatok_hf-*.whl)"
pip install -q -c "$ROOT/constraints.txt" "${WHEEL}[train,eval]"
cd "$WORK"
python - <<'PY'
import deltatok_hf, pathlib
location = pathlib.Path(deltatok_hf.__file__).resolve()
assert "site-packages" in str(location), f"deltatok_hf imported from {location}, not from the installed wheel"
print("installed at", location.parent)
PY
deltatok-hf demo --out demo --quiet
test -s demo/forecast.png && test -s demo/forecast.json
deltatok-hf train-deltatok --train_data synthetic --model_config tiny --frame_size 32 --num_synthetic_videos 4 \
  --train_batch_size 2 --max_train_steps 2 --output_dir trained
test -s trained/README.md && test -s trained/model.safetensors
python - <<'PY'
import evaluate, numpy as np
from huggingface_hub import ModelCard
from deltatok_hf.metrics import metric_path
card = ModelCard.load("trained/README.md")
assert card.data.library_name == "deltatok-hf", card.data
metric = evaluate.load(metric_path("forecast_miou"))
labels = np.zeros((8, 8), dtype=np.int64)
result = metric.compute(predictions=[labels], references=[labels], num_classes=2, ignore_index=255)
print("forecast_miou on identical maps:", result)
PY
echo "wheel smoke test passed"
