#!/usr/bin/env bash
# One GPU (or the CPU): ./recipes/train_1gpu.sh recipes/encodec_24khz.yaml [--resume]
set -euo pipefail
exec torchrun --standalone --nproc_per_node=1 -m audiocodec.train --config "$@"
