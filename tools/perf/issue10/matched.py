#!/usr/bin/env python3
"""Entries matched by (entry_ts_ms, side) = the same decision, across runs/variants: entry price difference in bps,
signed so that + = worse for the strategy; stop-market exits: fill vs stop level in bps (+ = worse than trigger)."""
import sqlite3, statistics as st, sys
def load(path, v):
    c = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    return {(r[0], r[1]): r for r in c.execute("select entry_ts_ms, side, entry_price, exit_reason, exit_price, stop_price, pnl "
            "from positions where variant=?", (v,))}
ref_label, ref = sys.argv[1].split("=", 1)
R = load(*ref.split(":"))
for arg in sys.argv[2:]:
    label, spec = arg.split("=", 1); X = load(*spec.split(":"))
    keys = sorted(set(R) & set(X))
    d = [(1 if k[1] == "long" else -1) * (X[k][2] - R[k][2]) / R[k][2] * 1e4 for k in keys]
    same = sum(1 for k in keys if abs(X[k][2] - R[k][2]) < 1e-9)
    print(f"{label} vs {ref_label}: {len(keys)} of {len(X)}/{len(R)} entries are the same decision; {same} at the same price; "
          f"entry worse by (bps, + = worse) sum {sum(d):.3f} median {st.median(d):.3f} min {min(d):.3f} max {max(d):.3f}; "
          f"worse {sum(1 for x in d if x > 1e-9)}, better {sum(1 for x in d if x < -1e-9)}")
for arg in sys.argv[1:]:
    label, spec = arg.split("=", 1); X = load(*spec.split(":"))
    s = [((1 if k[1] == "short" else -1) * (r[4] - r[5]) / r[5] * 1e4) for k, r in X.items() if r[3] == "StopLoss"]
    if s: print(f"{label}: StopLoss exits {len(s)}, fill beyond stop level bps: sum {sum(s):.3f} median {st.median(s):.3f} min {min(s):.3f} max {max(s):.3f}")
