#!/usr/bin/env bash
# The long Matbench runs as two queues side by side, one torch thread each (on 2 cores two
# single-thread fits finish more members per hour than one 2-thread fit); each run resumes:
#   nohup bash benchmarks/run_queue.sh DATA_HOME > benchmarks/results/matbench/queue.log 2>&1 &
set -u
cd "$(dirname "$0")/.."
data_home=${1:-../shared/data}
export OMP_NUM_THREADS=1
run() {
  python -m cgcnn_sk.cli matbench --task "$1" --preset recipe --data-home "$data_home" \
    --out benchmarks/results/matbench --quiet
}
(run jdft2d; run phonons) &
run dielectric &
wait
