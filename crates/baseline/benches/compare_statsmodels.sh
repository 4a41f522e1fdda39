#!/usr/bin/env bash
# Per-series fit time of the Rust baseline vs statsmodels' ExponentialSmoothing
# (PyPI, throwaway venv) on the same synthetic 7-day, 5-minute series with
# spikes and an hour-long gap each; statsmodels with the heuristic
# initialisation, so both fit alpha, beta and gamma only.
# usage: crates/baseline/benches/compare_statsmodels.sh [rust series] [python series]
set -euo pipefail
cd "$(dirname "$0")/../../.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo build -q --release -p inspector-baseline --example fit_timing
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q statsmodels
rust=$(./target/release/examples/fit_timing "${1:-10000}")
echo "$rust"
python_out=$("$work/venv/bin/python" crates/baseline/benches/statsmodels_reference.py "${2:-20}")
echo "$python_out"
r=$(sed -E 's/.* = ([0-9.]+) µs.*/\1/' <<<"$rust")
p=$(sed -E 's/.* = ([0-9.]+) µs.*/\1/' <<<"$python_out")
awk -v r="$r" -v p="$p" 'BEGIN { printf "ratio: Rust fits a series %.0fx faster than statsmodels\n", p / r }'
