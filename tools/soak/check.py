"""The soak's assertions and results file (tools/soak/run.sh; the rules are in its header).

usage: check.py OUT SECS SPEED DROP_EVERY SYMBOLS WARMUP RUSTO_EXIT_STATUS

Writes OUT/results.md and prints it; exits 1 when any rule fails (each failure is a FAIL line).
"""

import json
import sqlite3
import sys

ROUTES = 2
SLOTS_PER_ROUTE = 4
STAGES = ["socket_read", "tls_decrypt", "ws_frame", "parse", "book", "bars", "other", "compute", "decision",
          "tick_trade_bbo", "tick_to_decision", "persist_commit"]


class Check:
    def __init__(self):
        self.lines, self.failed = [], 0

    def rule(self, ok, what):
        self.lines.append(f"- {'PASS' if ok else 'FAIL'}: {what}")
        self.failed += not ok


def samples(out):
    with open(f"{out}/samples.tsv") as f:
        head = f.readline().rstrip("\n").split("\t")
        rows = [dict(zip(head, line.rstrip("\n").split("\t"))) for line in f if line.strip()]
    num = lambda v: None if v == "-" else float(v)
    return [{k: num(v) for k, v in r.items()} for r in rows]


def cpu(out, name):
    e, u, s, m = open(f"{out}/{name}.time").read().split()[-4:]
    return 100 * (float(u) + float(s)) / float(e), int(m)


def mib(kib):
    return kib / 1024


def memory(c, rows, secs, warm):
    w = min(600, (secs - warm) // 3)
    rss = [(r["t_s"], r["rusto_rss_kib"]) for r in rows if r["rusto_rss_kib"] is not None]
    base = [v for t, v in rss if warm <= t < warm + w]
    last = [v for t, v in rss if t >= secs - w]
    if not base or not last:
        c.rule(False, f"flat memory: no RSS samples in [{warm}, {warm + w}) s or in the last {w} s ({len(rss)} samples)")
        return
    limit = max(base) * 1.01 + 2048
    c.rule(max(last) <= limit, f"flat memory: rusto RSS max of the last {w} s {mib(max(last)):.1f} MiB <= max of "
           f"[{warm}, {warm + w}) s {mib(max(base)):.1f} MiB + 2 MiB + 1 % = {mib(limit):.1f} MiB")
    ex = [r["exchange_rss_kib"] for r in rows if r["exchange_rss_kib"] is not None]
    series = ", ".join(f"{t:.0f}s {mib(v):.1f}" for t, v in rss)
    c.lines.append(f"- rusto RSS (MiB) min {mib(min(v for _, v in rss)):.1f}, max {mib(max(v for _, v in rss)):.1f}, "
                   f"first {mib(rss[0][1]):.1f}, last {mib(rss[-1][1]):.1f}; exchange RSS first {mib(ex[0]):.1f}, "
                   f"last {mib(ex[-1]):.1f}, max {mib(max(ex)):.1f}")
    c.lines.append(f"- rusto RSS series (MiB): {series}")


def connections(c, r, st, rows, secs, drop):
    n, conn = r["net"], st["connections"]
    bound = ROUTES * SLOTS_PER_ROUTE
    c.rule(n["conn_slots_max"] <= bound, f"rusto connection-table high-water mark {n['conn_slots_max']} <= {bound}")
    c.rule(conn["ws_open_max"] <= bound, f"exchange websockets open at once at most {conn['ws_open_max']} <= {bound}")
    closed = conn["ws_closed"]
    c.rule(closed["max_age"] == 0, f"no connection reached the exchange's 45 s age limit (max_age {closed['max_age']})")
    # A drop resets a connection's age: floor(DROP_EVERY / 30) rotations per route between two drops, at least half.
    nominal = ROUTES * (secs // drop) * ((drop - 1) // 30) if drop < secs else ROUTES * (secs // 30)
    c.rule(n["rotations"] >= nominal // 2, f"rotations {n['rotations']} >= half the nominal {nominal}")
    fired = st["faults_fired"]
    c.rule(fired >= 1 and n["disconnects"] >= fired,
           f"drops fired {fired} (exchange closes fault_drop {closed['fault_drop']}), rusto disconnects "
           f"{n['disconnects']} >= drops, connects {n['connects']}")
    slots = sorted({int(x["conn_slots"]) for x in rows if x["conn_slots"] is not None})
    opens = [int(x["ex_ws_open"]) for x in rows if x["ex_ws_open"] is not None]
    c.lines.append(f"- sampled: rusto slots {slots}, exchange open websockets min {min(opens)} max {max(opens)}; "
                   f"exchange closes {json.dumps(closed)}")


def counts(c, r, st, disconnects):
    sent, by_sym = st["sent"], st["sent_by_symbol"]
    table = ["| symbol | sent aggTrade | trades | non-market | duplicates | out of order | ids missing | gaps | "
             "resyncs | audit matched/compared | crossed |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, s in sorted(r["symbols"].items()):
        d = s["dropped"]
        got = s["trades"] + s["non_market_trades"] + d["duplicate_trades"] + d["out_of_order_trades"]
        want = by_sym.get(name, {}).get("aggTrade", 0)
        missing = s["trade_ids_missing"]
        a = s["book_audit"]
        table.append(f"| {name} | {want} | {s['trades']} | {s['non_market_trades']} | {d['duplicate_trades']} | "
                     f"{d['out_of_order_trades']} | {missing} | {s['gaps']} | {s['resyncs']} | "
                     f"{a['matched']}/{a['compared']} | {s['crossed']} |")
        # Every copy the exchange sent (rotations overlap: both connections' copies) was received and counted.
        c.rule(got == want, f"{name}: trades received {got} == aggTrades sent {want}")
        # The aggTrade ids the engine never saw (consecutive per symbol): the exchange goes on trading while a
        # dropped connection reconnects and sends those trades to nobody, so ids are missing only with a
        # disconnect; without one, none may be.
        c.rule(disconnects > 0 or missing == 0,
               f"{name}: trade ids missing {missing} (rusto disconnects {disconnects}: the trades while a dropped "
               f"connection reconnected)")
        c.rule(a["compared"] > 0 and a["compared"] == a["matched"] and s["crossed"] == 0,
               f"{name}: book audit {a['matched']}/{a['compared']} matched, crossed {s['crossed']}")
    ev = r["events"]
    for mine, theirs in [("trade", "aggTrade"), ("depth", "depth"), ("book_ticker", "bookTicker"),
                         ("mark_price", "markPrice")]:
        c.rule(ev[mine] == sent[theirs], f"{mine} events parsed {ev[mine]} == {theirs} frames sent {sent[theirs]}")
    lost = {k: r[k] for k in ["malformed", "ring_full", "frames_dropped", "orphan_events"]}
    c.rule(not any(lost.values()), f"nothing malformed or dropped: {lost}")
    return table


def database(c, r, out):
    db = r["db"]
    errors = {k: db[k] for k in ["write_errors", "rows_dropped", "rows_rejected", "control_dropped"]}
    c.rule(not any(errors.values()), f"database: {db['rows']} rows in {db['commits']} commits, {errors}")
    with sqlite3.connect(f"{out}/live.db") as con:
        status = con.execute("SELECT mode, status FROM runs").fetchall()
    c.rule(status == [("live-paper", "finished")], f"database run rows {status}")


def latency(r):
    lat = r["latency_ns"]
    rows = ["| stage | count | p50 | p90 | p99 | p99.9 | max |", "|---|---|---|---|---|---|---|"]
    for name in STAGES + sorted(set(lat) - set(STAGES)):
        x = lat.get(name)
        if not x or not x["count"]:
            continue
        us = lambda k: f"{x[k] / 1e3:.1f} us" if k in x else "-"
        rows.append(f"| {name} | {x['count']} | {us('p50')} | {us('p90')} | {us('p99')} | {us('p999')} | {us('max')} |")
    return rows


def main():
    out, secs, speed, drop, nsym, warm, rc = sys.argv[1:8]
    secs, warm = int(secs), int(warm)
    c = Check()
    c.rule(rc == "0", f"rusto live exit status {rc} ({out}/rusto.err)")
    if rc != "0":
        print("\n".join(c.lines))
        sys.exit(1)
    r = json.load(open(f"{out}/rusto.json"))
    st = json.load(open(f"{out}/stats.json"))
    c.rule(st.get("final") is True, "the exchange wrote its final stats")
    rows = samples(out)
    memory(c, rows, secs, warm)
    connections(c, r, st, rows, secs, int(drop))
    table = counts(c, r, st, r["net"]["disconnects"])
    database(c, r, out)
    (rc_cpu, rc_max), (ex_cpu, ex_max) = cpu(out, "rusto"), cpu(out, "exchange")
    head = [f"# soak: {secs} s, --synthetic {nsym}, --speed {speed}, drops every {drop} s, rotation every 30 s",
            "", open(f"{out}/start.txt").read().strip(), f"end: {open(f'{out}/end.txt').read().strip()}", "",
            f"CPU over the run (% of one core): rusto {rc_cpu:.1f}, exchange {ex_cpu:.1f}; max RSS (time -f %M): "
            f"rusto {rc_max / 1024:.1f} MiB, exchange {ex_max / 1024:.1f} MiB; rusto frames {r['net']['frames']}, "
            f"{r['net']['bytes'] / 2**20:.0f} MiB, {len(rows)} samples", "",
            f"{'PASS' if not c.failed else f'FAIL ({c.failed} rules)'}", ""]
    text = "\n".join(head + c.lines + [""] + table + ["", "latency (rusto live --json, whole run):", ""] + latency(r))
    open(f"{out}/results.md", "w").write(text + "\n")
    print(text)
    sys.exit(1 if c.failed else 0)


if __name__ == "__main__":
    main()
