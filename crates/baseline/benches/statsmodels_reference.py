"""statsmodels' ExponentialSmoothing on the same synthetic series as the Rust
baseline (spikes and an hour-long gap each; additive trend and daily season).

Like for like: with initialization_method="heuristic" statsmodels fits alpha,
beta and gamma only, as the Rust model does (its default, "estimated", also
fits the 290 initial states). statsmodels cannot skip missing samples, so
the gap is filled by linear interpolation first (included in its time).
usage: statsmodels_reference.py [series=20]"""
import math
import sys
import time
import warnings

import numpy as np
from statsmodels.tsa.holtwinters import ExponentialSmoothing

warnings.simplefilter("ignore")


def series(k, points):
    amplitude = 10.0 + (k % 17)
    phase = float(k % 288)
    out = np.empty(points)
    for i in range(points):
        daily = math.sin((i + phase) / 288.0 * 2 * math.pi)
        x = math.sin((i * 7 + k * 13) * 12.9898) * 43758.5453
        out[i] = 100.0 + amplitude * daily + 0.001 * i + (x - math.floor(x) - 0.5) * 2.0
    return out


def with_faults(k, points):
    out = series(k, points)
    for i in range(points):
        if (i * 31 + k * 17) % 997 == 0:
            out[i] += 40.0
    gap = (k * 53) % max(points - 12, 1)
    out[gap:gap + 12] = np.nan
    return out


def interpolate(values):
    missing = np.isnan(values)
    if missing.any():
        index = np.arange(len(values))
        values = values.copy()
        values[missing] = np.interp(index[missing], index[~missing], values[~missing])
    return values


count = int(sys.argv[1]) if len(sys.argv) > 1 else 20
data = [with_faults(k, 2017) for k in range(count)]
start = time.perf_counter()
for values in data:
    fit = ExponentialSmoothing(
        interpolate(values[:2016]),
        trend="add",
        seasonal="add",
        seasonal_periods=288,
        initialization_method="heuristic",
    ).fit()
    fit.forecast(1)
elapsed = time.perf_counter() - start
print(f"statsmodels: {count} series in {elapsed:.3f} s = {elapsed / count * 1e6:.1f} µs per series")
