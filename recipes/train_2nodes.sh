#!/usr/bin/env bash
# Two nodes of 8 GPUs. Run on each node with the same MASTER_ADDR (a host both can reach) and JOB_ID:
#   MASTER_ADDR=node0 NODE_RANK=0 ./recipes/train_2nodes.sh recipes/encodec_24khz.yaml   # on node0
#   MASTER_ADDR=node0 NODE_RANK=1 ./recipes/train_2nodes.sh recipes/encodec_24khz.yaml   # on node1
# The recipe's output_dir (or --output-dir DIR) must be a folder both nodes share: rank 0 writes the checkpoints
# there and, with --resume, every rank reads its newest one. Ranks that find different checkpoints (or some none)
# all stop at once with one line saying what each found. Without a shared folder, copy one checkpoint to both
# nodes and pass --resume-from PATH on each. More in docs/training.md, "Several nodes".
# A node other than 0 waits up to RDZV_WAIT seconds (300) for node 0's rendezvous port, then stops with one line.
set -euo pipefail
: "${MASTER_ADDR:?set MASTER_ADDR to the rendezvous host}"
port="${MASTER_PORT:-29500}"
if [ "${NODE_RANK:-0}" != 0 ]; then
    deadline=$((SECONDS + ${RDZV_WAIT:-300}))
    until (exec 3<>"/dev/tcp/${MASTER_ADDR}/${port}") 2>/dev/null; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "train_2nodes.sh: error: cannot reach the rendezvous at ${MASTER_ADDR}:${port} after" \
                 "${RDZV_WAIT:-300} s: start node 0 first, and check MASTER_ADDR, MASTER_PORT and the firewall" >&2
            exit 1
        fi
        sleep 2
    done
fi
exec torchrun --nnodes=2 --nproc_per_node="${GPUS_PER_NODE:-8}" --node_rank="${NODE_RANK:-0}" \
    --rdzv_backend=c10d --rdzv_endpoint="${MASTER_ADDR}:${port}" --rdzv_id="${JOB_ID:-audiocodec}" \
    -m audiocodec.train --config "$@"
