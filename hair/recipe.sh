#!/usr/bin/env bash
# The hair meter's recipe: the commands that made weights/hair.safetensors (see its model card).
# About 2 h on 2 CPU cores. Usage: hair/recipe.sh [SCALP_DATA_EXPORT] [OUT]
#   SCALP_DATA_EXPORT: the Roboflow scalp-data export (default ../shared/data/scalp-data)
#   OUT: working folder (default runs/hair); the weights land in OUT/final/hair.safetensors
# Every step skips what an earlier, interrupted run already finished.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data/scalp-data}
OUT=${2:-runs/hair}
PY=${PY:-.venv/bin/python}
S=$OUT/scenes
mkdir -p "$OUT"

# 1. Synthetic scenes with exact hair truth (train / val / test subjects all differ by seed).
$PY -m hair.training_data --out "$S/val" --n 100 --seed 2000
$PY -m hair.training_data --out "$S/test" --n 100 --seed 3000
$PY -m hair.training_data --out "$S/train" --n 1500 --seed 1000

# 2. The real close-ups, for self-training on the *train* split only.
[ -f "$OUT/scalp-data/dataset.jsonl" ] || $PY pipeline.py data import "$DATA" --out "$OUT/scalp-data"

# 3. Synthetic training, then two rounds of self-training on confident real predictions
#    (the second with more strongly magnified crops).
[ -f "$OUT/run1/synthetic.pt" ] || $PY -m hair.train synthetic --scenes "$S/train" --val-scenes "$S/val" --out "$OUT/run1" --steps 1200
$PY -m hair.train pseudo --checkpoint "$OUT/run1/synthetic.pt" --dataset "$OUT/scalp-data" --out "$OUT/run1/pseudo"
[ -f "$OUT/run1/selftrain.pt" ] || $PY -m hair.train selftrain --checkpoint "$OUT/run1/synthetic.pt" --scenes "$S/train" \
    --val-scenes "$S/val" --pseudo "$OUT/run1/pseudo" --out "$OUT/run1" --steps 400
$PY -m hair.train pseudo --checkpoint "$OUT/run1/selftrain.pt" --dataset "$OUT/scalp-data" --out "$OUT/run2/pseudo"
[ -f "$OUT/run2/selftrain.pt" ] || $PY -m hair.train selftrain --checkpoint "$OUT/run1/selftrain.pt" --scenes "$S/train" \
    --val-scenes "$S/val" --pseudo "$OUT/run2/pseudo" --out "$OUT/run2" --steps 600 --real-share 0.3 --zoom 0.6 4.0 --native-share 0.25

# 4. Thresholds chosen on the synthetic val scenes, then the weights with them.
$PY -m hair.train export --checkpoint "$OUT/run2/selftrain.pt" --out "$OUT/untuned"
$PY -m hair.evaluate tune --weights "$OUT/untuned" --scenes "$S/val" --n 40 --out "$OUT/thresholds.json"
read -r LINE WIDTH < <($PY -c "import json,sys; t=json.load(open(sys.argv[1])); print(t['centerline_threshold'], t['width_threshold'])" "$OUT/thresholds.json")
$PY -m hair.train export --checkpoint "$OUT/run2/selftrain.pt" --out "$OUT/final" --centerline-threshold "$LINE" --width-threshold "$WIDTH"

# 5. Scores: held-out synthetic scenes and the hand-marked real close-ups.
$PY -m hair.evaluate synthetic --weights "$OUT/final" --scenes "$S/test" --out "$OUT/scores_synthetic.json"
$PY -m hair.evaluate marks --weights "$OUT/final" --marks tests/fixtures/hair-marks --dataset "$DATA" --out "$OUT/scores_marks.json"
echo "hair meter: $OUT/final/hair.safetensors"
