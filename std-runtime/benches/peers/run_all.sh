#!/usr/bin/env bash
# One same-machine run of the host workloads (std-runtime/examples/host_data/WORKLOAD.md):
# microfit from a plain `cargo build --release` (what `cargo run --release` and `cargo install`
# give users; the kernels pick the CPU's vector unit at run time) on each of its paths and
# dispatch levels, the CLI training workload A's architecture, the JAX peers (one jit per epoch
# with lax.scan, jit per step) and the NumPy peer. Every process is pinned to one core with
# single-threaded math libraries; microfit and the peers alternate, so that a change of load
# hits both. Writes one JSON object per line to stdout.
#
#   bash std-runtime/benches/peers/run_all.sh [CPU] > /tmp/host_run.jsonl
#   TARGET_DIR=target/other bash std-runtime/benches/peers/run_all.sh
#
# Needs `pip install jax optax numpy` for the peers (skipped when missing).
set -euo pipefail
cd "$(dirname "$0")/../../.."
CPU="${1:-1}"
ROUNDS="${ROUNDS:-3}"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 RAYON_NUM_THREADS=1
export XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"

DIR="${TARGET_DIR:-target}"
CARGO_TARGET_DIR="$DIR" cargo build --release --example host_workloads -p microfit >&2
CARGO_TARGET_DIR="$DIR" cargo build --release --bin microfit -p microfit >&2
HW="$DIR/release/examples/host_workloads"
CLI="$DIR/release/microfit"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT

# Wall time of a fresh process (seconds, 4 decimals).
ptime() { python3 -c 'import subprocess, sys, time; t = time.perf_counter(); subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); print(f"{time.perf_counter() - t:.4f}")' "$@"; }
tag() { python3 -c "import json,sys; [print(json.dumps({**json.loads(l), **json.loads(sys.argv[1])})) for l in sys.stdin if l.startswith('{')]" "$1"; }
have_jax() { python3 -c "import jax, optax" 2>/dev/null; }

echo "$(lscpu | grep 'Model name' | sed 's/ \+/ /g'); load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
taskset -c "$CPU" "$HW" --peak >&2
for r in $(seq "$ROUNDS"); do
    for m in A B C; do
        taskset -c "$CPU" "$HW" --model "$m" --json | tag "{\"round\":$r}"
        if have_jax; then
            taskset -c "$CPU" python3 std-runtime/benches/peers/jax_peer.py --model "$m" --variant scan --json 2>/dev/null | tag "{\"round\":$r}"
        fi
    done
    # The CLI on workload A's architecture and data (its `train_samples_per_s` counts training
    # time only), right after the example's run of A.
    taskset -c "$CPU" "$HW" --model A --json | tag "{\"round\":$r,\"next\":\"cli\"}"
    taskset -c "$CPU" "$CLI" train --data digits --hidden 32 --l2 1e-4 --lr 0.001 --batch-size 32 \
        --epochs 200 --validation-split 0 --out "$OUT/cli$r" --json 2>/dev/null \
        | python3 -c "import json,sys; s=[json.loads(l) for l in sys.stdin if '\"summary\"' in l][-1]; print(json.dumps({'cli':'microfit train','round':$r,'train_samples_per_s':s['train_samples_per_s']}))"
done
# Paths and dispatch levels (same bits: compare weights_hash).
for m in A B C; do
    for p in runtime per-sample; do
        taskset -c "$CPU" "$HW" --model "$m" --json --path "$p"
    done
    for s in avx2 baseline; do
        MICROFIT_SIMD="$s" taskset -c "$CPU" "$HW" --model "$m" --json
    done
    echo "{\"model\":\"$m\",\"process_s\":$(ptime taskset -c "$CPU" "$HW" --model "$m" --once)}"
done
if have_jax; then
    for m in A B C; do
        taskset -c "$CPU" python3 std-runtime/benches/peers/jax_peer.py --model "$m" --variant step --json 2>/dev/null
        echo "{\"peer\":\"jax-jit-scan\",\"model\":\"$m\",\"process_s\":$(ptime taskset -c "$CPU" python3 std-runtime/benches/peers/jax_peer.py --model "$m" --variant scan --once)}"
    done
fi
if python3 -c "import numpy" 2>/dev/null; then
    for m in A B; do
        taskset -c "$CPU" python3 std-runtime/benches/peers/numpy_peer.py --model "$m" --json
    done
fi
