#!/usr/bin/env python3
"""Ratios from one `run_all.sh` output (JSON lines on stdin): microfit (default build, tiled
path) against the JAX lax.scan peer per model, the per-round ratio (the two ran back to back)
and its median; the CLI's training throughput against the example's run of A just before it."""
import json
import statistics
import sys

rows = [json.loads(l) for l in sys.stdin if l.startswith("{")]
for m in "ABC":
    ours = {r["round"]: r["samples_per_s_median"] for r in rows
            if r.get("model") == m and "round" in r and r.get("path") == "tiled" and "next" not in r}
    jax = {r["round"]: r["samples_per_s_median"] for r in rows
           if r.get("peer") == "jax-jit-scan" and r.get("model") == m and "round" in r}
    step = [r["samples_per_s_median"] for r in rows if r.get("peer") == "jax-jit-step" and r.get("model") == m]
    ratios = [ours[k] / jax[k] for k in ours if k in jax]
    if ratios:
        print(f"{m}: microfit {statistics.median(ours.values()) / 1e6:.3f} M/s, jax-scan "
              f"{statistics.median(jax.values()) / 1e6:.3f} M/s, ratio per round "
              f"{', '.join(f'{x:.2f}' for x in ratios)} (median {statistics.median(ratios):.2f})"
              + (f", jax-step {step[0] / 1e6:.3f} M/s" if step else ""))
    elif ours:
        print(f"{m}: microfit {statistics.median(ours.values()) / 1e6:.3f} M/s (no JAX)")
cli = {r["round"]: r["train_samples_per_s"] for r in rows if r.get("cli")}
before = {r["round"]: r["samples_per_s_median"] for r in rows if r.get("next") == "cli"}
pairs = [cli[k] / before[k] for k in cli if k in before]
if pairs:
    print(f"CLI / host_workloads A: {', '.join(f'{x:.2f}' for x in pairs)} (median {statistics.median(pairs):.2f})")
hashes = {}
for r in rows:
    if "weights_hash" in r:
        hashes.setdefault(r["model"], set()).add(r["weights_hash"])
for m, h in sorted(hashes.items()):
    print(f"{m}: weights hashes over every path and level: {sorted(h)}")
