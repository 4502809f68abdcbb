#!/usr/bin/env bash
# One same-machine run of the host workloads (std-runtime/examples/host_data/WORKLOAD.md):
# microfit (default x86-64 build and x86-64-v3 build, batched and per-sample paths), the JAX
# peers (jit per epoch with lax.scan, jit per step) and the NumPy peer, every process pinned to
# one core with single-threaded math libraries. Writes one JSON object per line to stdout.
#
#   bash std-runtime/benches/peers/run_all.sh [CPU] > /tmp/host_run.jsonl
#   SSE2_TARGET_DIR=target/a V3_TARGET_DIR=target/b bash std-runtime/benches/peers/run_all.sh
#
# Needs `pip install jax optax numpy` for the peers (skipped when missing).
set -euo pipefail
cd "$(dirname "$0")/../../.."
CPU="${1:-1}"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 RAYON_NUM_THREADS=1
export XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"

# Target directories (override to keep out of another build's way):
# SSE2_TARGET_DIR (default target), V3_TARGET_DIR (default target/v3).
SSE2_DIR="${SSE2_TARGET_DIR:-target}"
V3_DIR="${V3_TARGET_DIR:-target/v3}"
CARGO_TARGET_DIR="$SSE2_DIR" cargo build --release --example host_workloads >&2
RUSTFLAGS="-C target-cpu=x86-64-v3" CARGO_TARGET_DIR="$V3_DIR" \
    cargo build --release --example host_workloads >&2
SSE2="$SSE2_DIR/release/examples/host_workloads"
V3="$V3_DIR/release/examples/host_workloads"

# Wall time of a fresh process (seconds, 4 decimals).
ptime() { python3 -c 'import subprocess, sys, time; t = time.perf_counter(); subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); print(f"{time.perf_counter() - t:.4f}")' "$@"; }
tag() { python3 -c "import json,sys; [print(json.dumps({**json.loads(l), **json.loads(sys.argv[1])})) for l in sys.stdin if l.startswith('{')]" "$1"; }

echo "$(lscpu | grep 'Model name' | sed 's/ \+/ /g'); load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
taskset -c "$CPU" "$V3" --peak >&2
for m in A B C; do
    taskset -c "$CPU" "$V3" --model "$m" --json | tag '{"build":"x86-64-v3"}'
    taskset -c "$CPU" "$SSE2" --model "$m" --json | tag '{"build":"x86-64 (SSE2)"}'
    taskset -c "$CPU" "$V3" --model "$m" --json --path per-sample | tag '{"build":"x86-64-v3"}'
    taskset -c "$CPU" "$SSE2" --model "$m" --json --path per-sample | tag '{"build":"x86-64 (SSE2)"}'
    for b in "$V3" "$SSE2"; do
        echo "{\"model\":\"$m\",\"process_s\":$(ptime taskset -c "$CPU" "$b" --model "$m" --once),\"binary\":\"$b\"}"
    done
done
if python3 -c "import jax, optax" 2>/dev/null; then
    for m in A B C; do
        for v in scan step; do
            taskset -c "$CPU" python3 std-runtime/benches/peers/jax_peer.py --model "$m" --variant "$v" --json 2>/dev/null
        done
        echo "{\"peer\":\"jax-jit-scan\",\"model\":\"$m\",\"process_s\":$(ptime taskset -c "$CPU" python3 std-runtime/benches/peers/jax_peer.py --model "$m" --variant scan --once)}"
    done
fi
if python3 -c "import numpy" 2>/dev/null; then
    for m in A B; do
        taskset -c "$CPU" python3 std-runtime/benches/peers/numpy_peer.py --model "$m" --json
    done
fi
