#!/usr/bin/env bash
# The long runs of the accuracy work, one after the other; each resumes where it stopped:
#   nohup bash benchmarks/run_queue.sh DATA_HOME > benchmarks/results/matbench/queue.log 2>&1 &
set -u
cd "$(dirname "$0")/.."
data_home=${1:-../shared/data}
export OMP_NUM_THREADS=2
python benchmarks/recipe_search.py --task jdft2d --candidates l1_es l1_300
for task in jdft2d phonons dielectric; do
  python -m cgcnn_sk.cli matbench --task "$task" --preset recipe --data-home "$data_home" \
    --out benchmarks/results/matbench --quiet
done
