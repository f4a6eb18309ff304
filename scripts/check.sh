#!/usr/bin/env bash
# Exactly what CI runs (.ci/run calls this): install into .venv, then lint, type-check,
# check the import layers, and run the tests. Safe to run again: installs are no-ops then.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
PY=python
# torch first, pinned to the CPU wheel this machine carries, so the range in
# pyproject.toml is already met and pip never pulls a multi-GB CUDA build.
$PY -m pip install -q --disable-pip-version-check torch==2.13.0
$PY -m pip install -q --disable-pip-version-check -e '.[torch,demo,s3,dev]'

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
$PY -m ruff check .
$PY -m ruff format --check .
$PY -m mypy scheduler pricing
lint-imports
$PY -m pytest -q "$@"
