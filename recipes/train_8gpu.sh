#!/usr/bin/env bash
# Eight GPUs on one node: ./recipes/train_8gpu.sh recipes/encodec_24khz.yaml [--resume]
set -euo pipefail
exec torchrun --standalone --nproc_per_node=8 -m audiocodec.train --config "$@"
