#!/usr/bin/env bash
# Two nodes of 8 GPUs. Run on each node with the same MASTER_ADDR (a host both can reach) and JOB_ID:
#   MASTER_ADDR=node0 NODE_RANK=0 ./recipes/train_2nodes.sh recipes/encodec_24khz.yaml   # on node0
#   MASTER_ADDR=node0 NODE_RANK=1 ./recipes/train_2nodes.sh recipes/encodec_24khz.yaml   # on node1
set -euo pipefail
: "${MASTER_ADDR:?set MASTER_ADDR to the rendezvous host}"
exec torchrun --nnodes=2 --nproc_per_node="${GPUS_PER_NODE:-8}" --node_rank="${NODE_RANK:-0}" \
    --rdzv_backend=c10d --rdzv_endpoint="${MASTER_ADDR}:${MASTER_PORT:-29500}" --rdzv_id="${JOB_ID:-audiocodec}" \
    -m audiocodec.train --config "$@"
