#!/usr/bin/env bash
# The committed CPU reference run on real MNIST (docs/reproduction.md). Resumable: rerun it and
# finished folds are skipped, an interrupted fold continues from its last finished epoch.
#
# Folds run fold-major (fold 0 of every row, then fold 1, ...: `--shard k/5` over the 9 x 5
# jobs of a block picks fold k of every row), so a partly filled store already pairs every row
# on the same folds.
#
# One thread: this is meant to run in the background beside other work on a 2-core machine.
#   OMP_NUM_THREADS=1 nohup bash reference_results/run.sh > reference_results/run.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA=${DATA:-../shared/datasets}
STORE=${STORE:-reference_results}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${OMP_NUM_THREADS:-1}
# The nine Table 4.1 rows of each block by name (a pattern such as 'vq1-*' would also match rows
# added to the grid later, and change which job `--shard k/5` picks).
VQ_ROWS=(vq1-baseline vq1-multi-exact vq1-multi-exact-softadapt vq1-multi-uniform vq1-multi-uniform-softadapt vq1-single-gaussian-a40 vq1-single-gaussian-a60 vq1-single-uniform-a40 vq1-single-uniform-a60)
GAUSS_ROWS=(gauss1-baseline gauss1-multi-exact gauss1-multi-exact-softadapt gauss1-multi-uniform gauss1-multi-uniform-softadapt gauss1-single-gaussian-a40 gauss1-single-gaussian-a60 gauss1-single-uniform-a40 gauss1-single-uniform-a60)
common=(--dataset mnist --folds 5 --protocol thesis --data-root "$DATA" --results "$STORE"
        --device cpu --no-progress --keep-going)

# Block 1: VQ-VAE config 1, nine rows, the whole 60,000 training digits, 10 epochs per fold.
for k in 0 1 2 3 4; do
  "$PY" -m mtvae crossval "${common[@]}" --rows "${VQ_ROWS[@]}" --epochs 10 --shard "$k/5"
done

# Block 2: Gaussian VAE config 1, nine rows, on a seeded subset of 5,000 training digits (4,000
# per training fold), 5 epochs per fold: sized to about 2 hours on one thread of this CPU. Each
# epoch also validates on the 5,000-image validation half, which costs as much as the training.
for k in 0 1 2 3 4; do
  "$PY" -m mtvae crossval "${common[@]}" --rows "${GAUSS_ROWS[@]}" --epochs 5 --limit 5000 --shard "$k/5"
done
