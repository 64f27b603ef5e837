#!/usr/bin/env bash
# Create (on demand) the isolated virtual environment of the RecBole peer
# runner and print its versions.
#
# Usage: benchmarks/peers/setup_recbole.sh [--force] [--check]
#            [--with-gnn SRC] [VENV_DIR]
#
#   VENV_DIR  defaults to $PYG_RECS_RECBOLE_VENV, else
#             ~/.cache/pyg_recs/recbole-venv
#   --force   delete and rebuild the venv even if it already works
#   --check   only check the venv (exit 1 if missing or broken)
#   --with-gnn SRC
#             also install RecBole-GNN (NISER, GC-SAN, TAGNN; not on PyPI)
#             from SRC, a git URL or a local clone such as
#             https://github.com/RUCAIBox/RecBole-GNN: it is cloned into
#             VENV_DIR/src/RecBole-GNN and put on the venv's path, with
#             torch_geometric and torch-scatter/torch-sparse (built from
#             source against the venv's torch unless pip has them cached)
#
# Environment:
#   PYTHON                       interpreter for the venv (python3)
#   PYG_RECS_RECBOLE_TORCH       torch requirement (torch==2.13.0)
#   PYG_RECS_RECBOLE_PIP_ARGS    extra pip arguments (e.g. an index URL)
#
# torch is installed FIRST and alone: an unpinned torch (or one pulled in
# as a dependency) would be a multi-GB CUDA build. Then the pinned
# requirements-recbole.txt, then recbole itself with --no-deps.
# The system Python is never modified.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REQS="${HERE}/requirements-recbole.txt"
RECBOLE_VERSION='1.2.1'
# RecBole-GNN's imports: PyG and its compiled extensions (torch_sparse's
# matmul at import time).
GNN_REQS=(torch_geometric==2.8.1)
GNN_EXT=(torch-scatter==2.1.2 torch-sparse==0.6.18)
TORCH_REQ="${PYG_RECS_RECBOLE_TORCH:-torch==2.13.0}"
PYTHON="${PYTHON:-python3}"
PIP_ARGS=(${PYG_RECS_RECBOLE_PIP_ARGS:-})

force=0
check_only=0
venv=''
gnn_src=''
while [ $# -gt 0 ]; do
    case "$1" in
        --force) force=1 ;;
        --check) check_only=1 ;;
        --with-gnn)
            [ $# -ge 2 ] || { echo "--with-gnn needs a source" >&2; exit 2; }
            gnn_src="$2"; shift ;;
        -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
        -*) echo "unknown option: $1" >&2; exit 2 ;;
        *) venv="$1" ;;
    esac
    shift
done
venv="${venv:-${PYG_RECS_RECBOLE_VENV:-${HOME}/.cache/pyg_recs/recbole-venv}}"
vpy="${venv}/bin/python"

# Print versions and succeed only if everything the runner uses imports.
check_venv() {
    [ -x "${vpy}" ] || return 1
    "${vpy}" - "${RECBOLE_VERSION}" "${TORCH_REQ}" <<'PY' 2>/dev/null
import sys
import warnings

warnings.filterwarnings('ignore')
import numpy
import pandas
import scipy
import torch
import recbole
from recbole.config import Config  # noqa: F401
from recbole.data import create_dataset, data_preparation  # noqa: F401
from recbole.trainer import KGTrainer, Trainer  # noqa: F401
from recbole.model.sequential_recommender import SRGNN  # noqa: F401
from recbole.model.knowledge_aware_recommender import KTUP  # noqa: F401

want_recbole, torch_req = sys.argv[1], sys.argv[2]
assert recbole.__version__ == want_recbole, recbole.__version__
if '==' in torch_req:
    want_torch = torch_req.split('==')[1]
    assert torch.__version__.split('+')[0] == want_torch, torch.__version__
print(f'python  {sys.version.split()[0]}')
print(f'recbole {recbole.__version__}')
print(f'torch   {torch.__version__} (cuda available: '
      f'{torch.cuda.is_available()})')
print(f'numpy   {numpy.__version__}')
print(f'pandas  {pandas.__version__}')
print(f'scipy   {scipy.__version__}')
PY
}

# RecBole-GNN's session models import (it is optional: 0 or 1, no output).
check_gnn() {
    "${vpy}" - <<'PY' 2>/dev/null
import warnings

warnings.filterwarnings('ignore')
from recbole_gnn.config import Config  # noqa: F401
from recbole_gnn.model.sequential_recommender import (  # noqa: F401
    GCSAN, NISER, TAGNN)
PY
}

install_gnn() {
    local src_dir="${venv}/src/RecBole-GNN" site
    echo "installing RecBole-GNN from ${gnn_src}"
    "${vpy}" -m pip install --quiet "${PIP_ARGS[@]}" "${GNN_REQS[@]}"
    "${vpy}" -m pip install --quiet --no-build-isolation "${PIP_ARGS[@]}" \
        "${GNN_EXT[@]}"
    rm -rf "${src_dir}"
    mkdir -p "${venv}/src"
    git clone --quiet "${gnn_src}" "${src_dir}"
    # RecBole-GNN has no setup.py: a .pth file puts its folder on the path.
    site="$("${vpy}" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"
    echo "${src_dir}" >"${site}/recbole_gnn.pth"
    if ! check_gnn; then
        echo "RecBole-GNN was installed but does not import" >&2
        exit 1
    fi
    echo "RecBole-GNN $(git -C "${src_dir}" rev-parse --short HEAD) ready"
}

if [ "${check_only}" = 1 ]; then
    if check_venv; then
        echo "recbole venv OK: ${venv}"
        check_gnn && echo "RecBole-GNN OK" || echo "RecBole-GNN not installed"
        exit 0
    fi
    echo "recbole venv missing or broken: ${venv}" >&2
    exit 1
fi

if [ "${force}" = 0 ] && check_venv; then
    echo "recbole venv already set up: ${venv}"
    if [ -n "${gnn_src}" ]; then
        install_gnn
    fi
    exit 0
fi

echo "creating recbole venv in ${venv}"
rm -rf "${venv}"
mkdir -p "$(dirname "${venv}")"
"${PYTHON}" -m venv "${venv}"
vpip=("${vpy}" -m pip install --quiet "${PIP_ARGS[@]}")
# 1. torch alone, pinned (a CPU wheel where the machine has one locally).
"${vpip[@]}" "${TORCH_REQ}"
# 2. the pinned dependencies RecBole needs at run time.
"${vpip[@]}" -r "${REQS}"
# 3. RecBole without its declared dependency set (ray, thop, plotly).
"${vpip[@]}" --no-deps "recbole==${RECBOLE_VERSION}"

if ! check_venv; then
    echo "recbole venv was built but does not import cleanly" >&2
    exit 1
fi
echo "recbole venv ready: ${venv}"
if [ -n "${gnn_src}" ]; then
    install_gnn
fi
