"""drain3 on the same input as the Rust engine, for the side-by-side benchmark.

usage: drain3_reference.py <lines.txt> <clusters-out.tsv>
Times drain3's core Drain.add_log_message and the TemplateMiner front end
(no masks, drain3 defaults: depth 4, sim_th 0.4, max_children 100), and writes
the final clusters as "<id>\t<size>\t<template>" lines.
"""
import sys
import time

from drain3.drain import Drain
from drain3.template_miner import TemplateMiner
from drain3.template_miner_config import TemplateMinerConfig

lines_path, out_path = sys.argv[1], sys.argv[2]
with open(lines_path, encoding="utf-8") as f:
    lines = f.read().split("\n")
if lines and lines[-1] == "":
    lines.pop()

drain = Drain(depth=4, sim_th=0.4, max_children=100)
start = time.perf_counter()
for line in lines:
    drain.add_log_message(line)
core = time.perf_counter() - start
print(f"drain3 Drain: {len(lines)} lines in {core:.3f} s = {len(lines) / core:.0f} lines/s, {len(drain.clusters)} clusters")

config = TemplateMinerConfig()
config.profiling_enabled = False
miner = TemplateMiner(config=config)
subset = lines[:200_000]
start = time.perf_counter()
for line in subset:
    miner.add_log_message(line)
front = time.perf_counter() - start
print(f"drain3 TemplateMiner: {len(subset)} lines in {front:.3f} s = {len(subset) / front:.0f} lines/s")

with open(out_path, "w", encoding="utf-8") as out:
    for cluster in sorted(drain.clusters, key=lambda c: c.cluster_id):
        out.write(f"{cluster.cluster_id}\t{cluster.size}\t{cluster.get_template()}\n")
