#!/usr/bin/env bash
# The CUDA rows of docs/performance.md's "--compile" section, in one command for a lent GPU
# (sized for a 10-minute window; each part has its own time limit, and the JSON is saved after
# every backbone, so a part cut short keeps what finished):
#
#     bash benchmarks/gpu_compile.sh            # writes benchmarks/results/compile-cuda.json and .log
#
# 1. plain vs exact, eager vs compiled (--compile), contiguous vs channels-last for the conv nets:
#    ResNet-18 (28), tabular MLP, SAINT, ResNet-50 (224), CLIP ViT-B/16 (the costliest compiles last);
# 2. the kernel launches per exact step and the GPU's busy share (benchmarks/profile_step.py),
#    eager and compiled.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results}
mkdir -p "$OUT"
PYTHON=${PYTHON:-python}
export SAFLEX_OFFLINE=1
{
  timeout 420 "$PYTHON" benchmarks/overhead.py --device cuda --compile --steps 10 --warmup 2 \
      --backbones resnet18_28,mlp,saint,resnet50_224,clip_vit_b16 --out "$OUT/compile-cuda.json"
  timeout 60 "$PYTHON" benchmarks/profile_step.py --device cuda --steps 10
  timeout 90 "$PYTHON" benchmarks/profile_step.py --device cuda --steps 10 --compile
} 2>&1 | tee "$OUT/compile-cuda.log"
