#!/usr/bin/env bash
# One prepared GPU benchmark of at most 9 minutes (see benchmarks/README.md).
#
#   bash benchmarks/gpu.sh [--srgnn-data DIR] [--ktup-data DIR] [--tag TAG]
#                          [--out-dir DIR] [--work DIR] [--dry-run]
#
# On a machine with one CUDA GPU and no network: uses the torch already
# installed there, and stops in one line if it has no CUDA device. Runs,
# each part under its own `timeout` (a failed part does not lose the
# others): dataset processing; SR-GNN on full Diginetica for one epoch
# eager fp32 and compiled bf16 (padded batches, CUDA graphs), each
# followed by one full test evaluation; TAGNN's reproduction (validation-
# selected, as many of its 9 epochs as fit); KTUP on ml-100k-kg for a few
# epochs. Writes <out-dir>/<tag>-gpu.json and .md (and the TAGNN record
# <tag>-reproduce-tagnn-diginetica.*).
#
# --dry-run: the same script on the CPU with tiny data (srgnn-sample, a
# few batches; recbole-test-kg), to check it without a GPU.
set -u
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
PYTHON="${PYTHON:-python3}"

DRY=0
TAG=""
OUT_DIR="$HERE/results"
WORK=""
DATA_ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY=1; shift ;;
        --tag) TAG="$2"; shift 2 ;;
        --out-dir) OUT_DIR="$2"; shift 2 ;;
        --work) WORK="$2"; shift 2 ;;
        --srgnn-data|--ktup-data) DATA_ARGS+=("$1" "$(cd "$2" 2>/dev/null \
            && pwd || echo "$2")"); shift 2 ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "gpu.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done

# Seconds per part: 550 in all on a GPU, with the dataset processing
# paid once by 'prepare'.
if [ "$DRY" = 1 ]; then
    TAG="${TAG:-$(date +%Y-%m-%d)-dry-run}"
    FLAGS=(--dry-run)
    LIMITS=(prepare=120 srgnn-fp32=60 srgnn-compiled-bf16=240 tagnn=180
            ktup=120)
else
    TAG="${TAG:-$(date +%Y-%m-%d)-cuda}"
    FLAGS=()
    LIMITS=(prepare=90 srgnn-fp32=80 srgnn-compiled-bf16=140 tagnn=180
            ktup=60)
    if ! "$PYTHON" -c 'import sys, torch
sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
        echo "gpu.sh: no usable CUDA device for '$PYTHON' (torch" \
            "$("$PYTHON" -c 'import torch; print(torch.__version__)' \
            2>/dev/null || echo 'not installed')); nothing run" \
            "(--dry-run checks the script on the CPU)" >&2
        exit 1
    fi
fi
WORK="${WORK:-$HERE/.work/gpu-$TAG}"
mkdir -p "$WORK" "$OUT_DIR"
rm -f "$WORK"/*.json "$WORK"/*.log "$WORK"/*.rc
cd "$REPO" || exit 1

for entry in "${LIMITS[@]}"; do
    part="${entry%%=*}"
    limit="${entry#*=}"
    echo "gpu.sh: $part (at most ${limit} s)"
    timeout --kill-after=10 "$limit" "$PYTHON" "$HERE/gpu_bench.py" "$part" \
        --work "$WORK" --tag "$TAG" --out-dir "$OUT_DIR" "${FLAGS[@]}" \
        "${DATA_ARGS[@]}" \
        >"$WORK/$part.log" 2>&1
    rc=$?
    echo "$rc" >"$WORK/$part.rc"
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        echo "gpu.sh: $part ran out of time (${limit} s)"
    elif [ "$rc" != 0 ]; then
        echo "gpu.sh: $part failed (exit $rc): $(tail -n 1 "$WORK/$part.log")"
    fi
done
"$PYTHON" "$HERE/gpu_bench.py" report --work "$WORK" --tag "$TAG" \
    --out-dir "$OUT_DIR" "${FLAGS[@]}" "${DATA_ARGS[@]}"
