"""drain3 on the same input as the Rust engine, for the side-by-side benchmark.

usage: drain3_reference.py <lines.txt> <clusters-out.tsv> [masked]
Times drain3's core Drain.add_log_message and the TemplateMiner front end
(no masks, drain3 defaults: depth 4, sim_th 0.4, max_children 100), and writes
the final clusters as "<id>\t<size>\t<template>" lines.

With "masked": the TemplateMiner with masking instructions equivalent to the
Rust engine's built-in token classifier (paths and URLs, tokens and
key=value values holding a digit, month and weekday names) and the engine's
recommended depth 5 / sim_th 0.8, over every line: drain3 with masks, the
configuration that runs.
"""
import sys
import time

from drain3.drain import Drain
from drain3.template_miner import TemplateMiner
from drain3.template_miner_config import TemplateMinerConfig

lines_path, out_path = sys.argv[1], sys.argv[2]
masked = len(sys.argv) > 3 and sys.argv[3] == "masked"
with open(lines_path, encoding="utf-8") as f:
    lines = f.read().split("\n")
if lines and lines[-1] == "":
    lines.pop()

if masked:
    from drain3.masking import MaskingInstruction

    with open(lines_path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    config = TemplateMinerConfig()
    config.profiling_enabled = False
    config.drain_depth = 5
    config.drain_sim_th = 0.8
    # A token starts after whitespace or an opening bracket or quote.
    start = r"(?<![^\s(\[{<\"'])"
    config.masking_instructions = [
        MaskingInstruction(start + r"(?:/[^\s/]+/\S*|[A-Za-z]+://\S+)", "PATH"),
        MaskingInstruction(r"(?<==)[^\s\d]*\d\S*", "NUM"),
        MaskingInstruction(start + r"[^\s\d]*\d\S*", "NUM"),
        MaskingInstruction(
            r"\b(?:Jan|Feb|Mar|Apr|May|June?|July?|Aug|Sept?|Oct|Nov|Dec|Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*\b",
            "DATE",
        ),
    ]
    miner = TemplateMiner(config=config)
    started = time.perf_counter()
    for line in lines:
        miner.add_log_message(line)
    elapsed = time.perf_counter() - started
    print(f"drain3 TemplateMiner with masks: {len(lines)} lines in {elapsed:.3f} s = {len(lines) / elapsed:.0f} lines/s, {len(miner.drain.clusters)} clusters")
    sys.exit(0)

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
