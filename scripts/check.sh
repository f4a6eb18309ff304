#!/usr/bin/env bash
# What CI runs (.ci/run calls this): install into .venv, then lint, type-check, check the
# import layers, and run one lane of the tests. Safe to run again: installs are no-ops then.
#
# Lanes (pytest markers, see pyproject.toml):
#   bash scripts/check.sh          fast: every test not marked slow, gpu, cloud or vllm (the default)
#   bash scripts/check.sh --slow   slow: the end-to-end tests marked slow, alone
#   bash scripts/check.sh --all    all: fast + slow (what .ci/run runs)
# SKYBATCH_TEST_LANE=fast|slow|all does the same; further arguments go to pytest.
# Every lane prints its 15 slowest tests.
set -euo pipefail
cd "$(dirname "$0")/.."

# CI (CI=true, as .ci/run is run) takes every CPU lane; a developer gets the fast one.
default_lane=fast
if [ "${CI:-}" = true ]; then default_lane=all; fi
lane="${SKYBATCH_TEST_LANE:-$default_lane}"
case "${1:-}" in
  --fast | --slow | --all) lane="${1#--}"; shift ;;
esac
case "$lane" in
  fast) marks="not slow and not gpu and not cloud and not vllm" ;;
  slow) marks="slow and not gpu and not cloud and not vllm" ;;
  all) marks="not gpu and not cloud and not vllm" ;;
  *) echo "check.sh: lane '$lane': use fast, slow or all" >&2; exit 2 ;;
esac

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
$PY -m pytest -q -m "$marks" --durations=15 "$@"
