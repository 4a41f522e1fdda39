#!/usr/bin/env bash
# Side-by-side throughput of the Rust Drain engine and drain3 (PyPI, in a
# throwaway venv) on the same ~1,000,000 lines (the shared Loghub systems'
# messages repeated), same settings; checks the clusters are identical and
# prints the speed ratio and the engine's RSS at 10k templates.
# usage: crates/log-eval/benches/compare_drain3.sh [loghub dir] [lines]
set -euo pipefail
cd "$(dirname "$0")/../../.."
data=${1:-../shared/data/loghub-2k}
count=${2:-1000000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo build -q --release -p inspector-log-eval --examples
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
