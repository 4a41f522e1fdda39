"""drain3 on the template-growth workload written by the `growth` example.

usage: growth_drain3.py <dir> [template counts...]
For each count: a drain3 Drain with the engine's recommended settings
(depth 5, sim_th 0.7, max_children 100) is given the count's templates
directly through its prefix tree (filling it line by line would take hours
at 50,000 templates, which is the point), then the same window of lines the
Rust engine was timed on is timed here.
"""
import sys
import time

from drain3.drain import Drain, LogCluster

directory = sys.argv[1]
counts = [int(c) for c in sys.argv[2:]] or [500, 50000]
for count in counts:
    drain = Drain(depth=5, sim_th=0.7, max_children=100)
    with open(f"{directory}/templates-{count}.txt", encoding="utf-8") as f:
        for cluster_id, template in enumerate(f.read().splitlines(), start=1):
            cluster = LogCluster(template.split(), cluster_id)
            drain.id_to_cluster[cluster_id] = cluster
            drain.add_seq_to_prefix_tree(drain.root_node, cluster)
            drain.clusters_counter = cluster_id
    with open(f"{directory}/window-{count}.txt", encoding="utf-8") as f:
        lines = f.read().splitlines()
    started = time.perf_counter()
    for line in lines:
        drain.add_log_message(line)
    elapsed = time.perf_counter() - started
    print(f"drain3: {count} templates: {len(lines)} lines in {elapsed:.4f} s = {len(lines) / elapsed:.0f} lines/s")
