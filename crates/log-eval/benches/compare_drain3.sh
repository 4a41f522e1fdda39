#!/usr/bin/env bash
# Side-by-side throughput of the Rust Drain engine and drain3 (PyPI, in a
# throwaway venv), in one run:
# - the same ~1,000,000 messages (the shared Loghub systems' repeated), same
#   settings: clusters checked identical, speed ratio without masks and with
#   equivalent masks;
# - template growth: 2,000 lines (half new templates) at 500 and 50,000 live
#   templates sharing one tree leaf;
# - end to end, as whole processes: `inspector logs mine` against drain3's
#   default TemplateMiner on 500,000 raw lines (headers included);
# and the engine's RSS at 10k templates.
# usage: crates/log-eval/benches/compare_drain3.sh [loghub dir] [lines]
set -euo pipefail
cd "$(dirname "$0")/../../.."
data=${1:-../shared/data/loghub-2k}
count=${2:-1000000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo build -q --release -p inspector-log-eval --examples
cargo build -q --release -p inspector
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q drain3

./target/release/examples/bench_input "$data" "$work/lines.txt" "$count"
rust=$(./target/release/examples/throughput "$work/lines.txt" "$work/rust.tsv" none drain3)
echo "$rust"
python_out=$("$work/venv/bin/python" crates/log-eval/benches/drain3_reference.py "$work/lines.txt" "$work/drain3.tsv")
echo "$python_out"
masked_rust=$(./target/release/examples/throughput "$work/lines.txt" "$work/builtin.tsv" builtin recommended | sed 's/^rust:/rust (built-in masks, recommended):/')
echo "$masked_rust"
masked_python=$("$work/venv/bin/python" crates/log-eval/benches/drain3_reference.py "$work/lines.txt" /dev/null masked)
echo "$masked_python"

if cmp -s "$work/rust.tsv" "$work/drain3.tsv"; then
  echo "clusters: identical ($(wc -l < "$work/rust.tsv") clusters, same ids, sizes and templates)"
else
  echo "clusters: DIFFERENT"; diff "$work/rust.tsv" "$work/drain3.tsv" | head -20; exit 1
fi
rust_rate=$(sed -E 's/.* = ([0-9]+) lines\/s.*/\1/' <<<"$rust")
py_rate=$(head -1 <<<"$python_out" | sed -E 's/.* = ([0-9]+) lines\/s.*/\1/')
py_front=$(sed -n 2p <<<"$python_out" | sed -E 's/.* = ([0-9]+) lines\/s.*/\1/')
awk -v r="$rust_rate" -v p="$py_rate" -v f="$py_front" \
  'BEGIN { printf "ratio: %.1fx drain3 Drain core, %.1fx drain3 TemplateMiner\n", r / p, r / f }'
masked_rust_rate=$(sed -E 's/.* = ([0-9]+) lines\/s.*/\1/' <<<"$masked_rust")
masked_py_rate=$(sed -E 's/.* = ([0-9]+) lines\/s.*/\1/' <<<"$masked_python")
awk -v r="$masked_rust_rate" -v p="$masked_py_rate" \
  'BEGIN { printf "ratio with masks: %.1fx drain3 TemplateMiner with equivalent masks\n", r / p }'
./target/release/examples/memory 10000

echo "template growth (half of the lines new templates, all in one leaf):"
./target/release/examples/growth "$work/growth" 500 50000
"$work/venv/bin/python" crates/log-eval/benches/growth_drain3.py "$work/growth" 500 50000

# Raw lines, headers included: every shared system's log, cycled.
# (`head` closing the pipe early is the point, not a failure.)
for _ in $(seq 40); do cat "$data"/*/*_2k.log; done | head -500000 > "$work/raw.log" || true
echo "end to end, 500,000 raw lines, whole processes (best of 3):"
best() { sort -n | head -1; }
rust_e2e=$(for _ in 1 2 3; do /usr/bin/time -f "%e" ./target/release/inspector logs mine "$work/raw.log" 2>&1 >/dev/null | tail -1; done | best)
cat > "$work/miner.py" <<'PY'
import sys
from drain3.template_miner import TemplateMiner
from drain3.template_miner_config import TemplateMinerConfig
config = TemplateMinerConfig()
config.profiling_enabled = False
miner = TemplateMiner(config=config)
with open(sys.argv[1], encoding="utf-8", errors="replace") as f:
    for line in f:
        line = line.rstrip("\r\n")
        if line.strip():
            miner.add_log_message(line)
PY
py_e2e=$(for _ in 1 2 3; do /usr/bin/time -f "%e" "$work/venv/bin/python" "$work/miner.py" "$work/raw.log" 2>&1 >/dev/null | tail -1; done | best)
echo "inspector logs mine: ${rust_e2e} s; drain3 TemplateMiner (defaults, no masks): ${py_e2e} s"
awk -v r="$rust_e2e" -v p="$py_e2e" 'BEGIN { printf "ratio end to end: %.1fx\n", p / r }'
