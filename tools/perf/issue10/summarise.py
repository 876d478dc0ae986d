#!/usr/bin/env python3
"""Per-variant figures of rusto replay databases (read-only). Usage: summarise.py LABEL=DB ...
Maker/taker is not a column in this schema (0001-0004); it is read from each fill's fee rate fee/(qty*price):
0.0002 = maker, 0.0005 = taker, 0 = funding (kind 'Funding'). Any other rate aborts."""
import sqlite3, statistics as st, sys
def rate_class(kind, q, px, fee):
    if kind == "Funding": assert fee == 0; return "funding"
    r = fee / (q * px)
    if abs(r - 0.0002) < 1e-9: return "maker"
    if abs(r - 0.0005) < 1e-9: return "taker"
    raise SystemExit(f"unexpected fee rate {r} on {kind}")
summary, reasons, perpos = [], [], {}
for arg in sys.argv[1:]:
    label, path = arg.split("=", 1)
    c = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    for (v,) in c.execute("select distinct variant from positions order by variant='base' desc, variant"):
        P = c.execute("select id, seq, side, entry_ts_ms, entry_price, quantity, exit_reason, fees, pnl, expected_slippage_bps, "
                      "realized_slippage_bps, exit_price, stop_price, tp1_price, tp2_price from positions where variant=? order by seq", (v,)).fetchall()
        F = c.execute("select f.position_id, f.kind, f.quantity, f.price, f.fee, f.pnl from fills f join positions p on p.id=f.position_id "
                      "where p.variant=?", (v,)).fetchall()
        cls = [(f, rate_class(f[1], f[2], f[3], f[4])) for f in F]
        fund = sum(f[5] for f, k in cls if k == "funding")
        nfund = sum(1 for f, k in cls if k == "funding")
        maker = sum(1 for f, k in cls if k == "maker"); taker = sum(1 for f, k in cls if k == "taker")
        tpf = sum(1 for f, k in cls if f[1] in ("TakeProfit", "TP2"))
        tpm = sum(1 for f, k in cls if f[1] in ("TakeProfit", "TP2") and k == "maker")
        rs = [p[10] for p in P]
        fpnl = sum(f[5] for f in F); ppnl = sum(p[8] for p in P)
        assert abs(fpnl - ppnl) < 1e-6, (label, v, fpnl, ppnl)
        summary.append((label, v, len(P), sum(rs), st.median(rs), st.mean(p[9] for p in P), sum(p[7] for p in P), fund, nfund, ppnl,
                        maker, taker, tpf, tpm))
        for r in c.execute("select exit_reason, count(*), sum(pnl) from positions where variant=? group by 1 order by 1", (v,)):
            reasons.append((label, v) + r)
        for p in P:
            pf = sum(f[5] for f, k in cls if f[0] == p[0] and k == "funding")
            perpos.setdefault((label, v), []).append(p + (pf,))
print("| run | variant | positions | Σ entry slip bps | median entry slip bps | mean expected slip bps | Σ fees | funding (fills) | net pnl | maker fills | taker fills | TP fills (maker) |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for s in summary:
    print(f"| {s[0]} | {s[1]} | {s[2]} | {s[3]:.3f} | {s[4]:.3f} | {s[5]:.3f} | {s[6]:.4f} | {s[7]:.4f} ({s[8]}) | {s[9]:.4f} | {s[10]} | {s[11]} | {s[12]} ({s[13]}) |")
print("\n| run | variant | exit reason | count | Σ pnl |\n|---|---|---|---:|---:|")
for r in reasons:
    print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]:.4f} |")
if "--perpos" in " ".join(sys.argv) or True:
    for (label, v), L in perpos.items():
        if v != "base": continue
        print(f"\n{label} / {v}: seq side entry_ts entry_px qty exit_reason exit_px fees funding pnl exp_slip real_slip")
        for p in L:
            print(f"  {p[1]} {p[2]} {p[3]} {p[4]:.2f} {p[5]:.3f} {p[6]} {p[11]:.2f} {p[7]:.4f} {p[15]:.4f} {p[8]:.4f} {p[9]:.3f} {p[10]:.3f}")
