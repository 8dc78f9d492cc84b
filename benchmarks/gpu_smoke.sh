#!/usr/bin/env bash
# One-shot GPU benchmark, about 8 minutes on one H100, that fills in the GPU numbers of
# docs/performance.md. Run from anywhere; results go to $OUT (the device tool's folder) or
# results/gpu_bench. Each part has its own time limit and the JSON files are written after
# every measurement, so a part cut short still returns what it measured.
#
#   bash benchmarks/gpu_smoke.sh              # MNIST, several runs at once, CIFAR-10, compile
#   CELEBA=1 bash benchmarks/gpu_smoke.sh     # also the 64x64 models (about 3 more minutes)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-results/gpu_bench}  # results/ is git-ignored
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT"
B="$PY benchmarks/throughput.py --device cuda"

{ nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
  $PY -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
  echo "cpu cores: $(nproc)"; } 2>&1 | tee "$OUT/gpu.txt"

# 1. every MNIST config x method: fit vs bare loop vs the thesis pipeline (12 loader workers)
timeout 200 $B --datasets mnist --steps 20 --rounds 3 --json "$OUT/mnist.json" 2>&1 \
  | tee "$OUT/mnist.txt"

# 2. several small trainings at once on the one GPU (e.g. the folds of a row as processes)
timeout 60 $PY benchmarks/multirun.py --device cuda --model vq1 --method single \
  --procs 1,2,4,8 --images 3840 2>&1 | tee "$OUT/multirun.txt"

# 3. CIFAR-10 shapes, every config x method
timeout 80 $B --datasets cifar10 --steps 10 --rounds 2 --no-sampling \
  --json "$OUT/cifar10.json" 2>&1 | tee "$OUT/cifar10.txt"

# 4. variants on the MNIST single decoders, one round each: torch.compile, cuDNN autotuning,
#    and fp32 (the thesis-style pipeline is always fp32, as the thesis ran; fit uses bf16)
V="--datasets mnist --models vq1,gaussian1 --methods single --steps 20 --rounds 1 --no-sampling"
timeout 70 $B $V --compile 2>&1 | tee "$OUT/variants.txt"
timeout 25 $B $V --cudnn-benchmark 2>&1 | tee -a "$OUT/variants.txt"
timeout 25 $B $V --no-amp 2>&1 | tee -a "$OUT/variants.txt"

if [ "${CELEBA:-0}" = 1 ]; then  # table on the terminal only: at most 8 files come back
  timeout 200 $B --datasets celeba --steps 5 --rounds 1 --no-sampling \
    --json "$OUT/celeba.json" 2>&1
fi

# markdown tables and Table 4.1 grid times of all the above (printed only)
$PY benchmarks/report.py "$OUT"/*.json
echo "results in $OUT"
