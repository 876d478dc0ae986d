#!/usr/bin/env python3
"""Per-position table, variant base: BEFORE (like-for-like config) beside AFTER (full realism.toml), matched by decision
(entry_ts_ms, side). Funding = the position's Funding fills (no positions.funding column in this schema)."""
import sqlite3, sys
def load(path, v):
    c = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    rows = c.execute("select id, entry_ts_ms, side, entry_price, realized_slippage_bps, exit_reason, exit_price, fees, pnl "
                     "from positions where variant=?", (v,)).fetchall()
    fund = dict(c.execute("select position_id, sum(pnl) from fills where kind='Funding' group by 1").fetchall())
    return {(r[1], r[2]): r[3:] + (fund.get(r[0], 0.0),) for r in rows}
B = load(sys.argv[1], "base"); A = load(sys.argv[2], "base")
print("| entry_ts_ms (decision) | side | BEFORE entry px | slip bps | exit | exit px | fees | pnl | AFTER entry px | slip bps | exit | exit px | fees | funding | pnl |")
print("|---:|---|---:|---:|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|")
def cells(x, after):
    if x is None: return ["—"] * (7 if after else 6)
    c = [f"{x[0]:.2f}", f"{x[1]:.3f}", x[2], f"{x[3]:.2f}", f"{x[4]:.2f}"]
    if after: c.append(f"{x[6]:.2f}")
    return c + [f"{x[5]:.2f}"]
for k in sorted(set(B) | set(A)):
    print("| " + " | ".join([str(k[0]), k[1]] + cells(B.get(k), False) + cells(A.get(k), True)) + " |")
sb = lambda D, i: sum(x[i] for x in D.values())
print(f"| **sum** | {len(B)} / {len(A)} | | {sb(B,1):.3f} | | | {sb(B,4):.2f} | {sb(B,5):.2f} | | {sb(A,1):.3f} | | | {sb(A,4):.2f} | {sb(A,6):.2f} | {sb(A,5):.2f} |")
