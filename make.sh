#!/usr/bin/env bash
# Builds the Cython VOT region-overlap extension (utils/region/_region_ext*.so), the libjpeg region decoder
# (datasets/_jpeg_region*.so; needs libjpeg-turbo's headers, Debian/Ubuntu libjpeg-dev), the libpng mask-row decoder
# (datasets/_png_rows*.so; libpng-dev), the streaming-store writer of batch rows (datasets/_stream*.so, plain C) and
# the Winograd tile transforms of CPU fp32 training (models/_winograd*.so, plain C) in place.
# All optional: without them utils.region uses its numba implementation (identical numbers), the training set
# decodes whole JPEGs and masks with OpenCV and numpy writes the batch rows (identical samples, slower); training
# runs its 3x3 convolutions directly.
# Usage: bash make.sh            (PYTHON=/path/to/python bash make.sh to pick the interpreter; default: the project venv)
set -euo pipefail

case "${1:-}" in
  -h|--help)
    echo "usage: bash make.sh   # builds the C / Cython extensions in place with setup.py build_ext --inplace"
    exit 0
    ;;
  "") ;;
  *)
    echo "usage: bash make.sh   (unknown argument: $1)" >&2
    exit 2
    ;;
esac

cd "$(dirname "${BASH_SOURCE[0]}")"
# shellcheck source=test/python_env.sh
source test/python_env.sh  # keeps $PYTHON if set, else the project venv (created on a fresh machine)
"$PYTHON" setup.py build_ext --inplace
"$PYTHON" -c "import siammask.utils.region as r; print('siammask.utils.region backend:', r.BACKEND)"
"$PYTHON" -c "import siammask.datasets.jpeg as j; print('crop511 JPEG decoding:', 'region decoder' if j.region_decoder_ok() else 'whole images (OpenCV)')"
"$PYTHON" -c "import siammask.datasets.masks as m; print('crop511 mask decoding:', 'row decoder' if m.png_rows_ok() else 'whole masks (OpenCV)')"
"$PYTHON" -c "import siammask.datasets.row_writes as w; print('batch rows:', 'streaming stores' if w.STREAMING else 'numpy')"
"$PYTHON" -c "import siammask.models.winograd as w; print('CPU fp32 training 3x3 convolutions:', 'Winograd F(4x4, 3x3)' if w.available() else 'direct')"
