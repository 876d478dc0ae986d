"""The soak's sampler (tools/soak/run.sh): every SAMPLE seconds while rusto runs, one row of OUT/samples.tsv.

usage: sample.py OUT RUSTO_PID EXCHANGE_PID METRICS_PORT SAMPLE_SECS

Columns: t_s (since the sampler started), rusto and exchange RSS (KiB, /proc/PID/status VmRSS) and CPU (% of one
core over the interval, /proc/PID/stat utime + stime), rusto's metrics (connections open, connection-table slots,
rotations, disconnects, frames) and the exchange's stats file (websockets open, most open at once, aggTrades sent).
A sample that cannot be read leaves "-" in its column (counted in the last column, errors).
"""

import json
import os
import sys
import time
import urllib.request

COLUMNS = [
    "t_s", "rusto_rss_kib", "exchange_rss_kib", "rusto_cpu_pct", "exchange_cpu_pct", "conns_open", "conn_slots",
    "rotations", "disconnects", "frames", "ex_ws_open", "ex_ws_open_max", "ex_aggtrades_sent", "errors",
]
METRICS = {
    "rusto_ws_connections_open": "conns_open",
    "rusto_ws_connection_slots": "conn_slots",
    "rusto_ws_rotations_total": "rotations",
    "rusto_ws_disconnects_total": "disconnects",
    "rusto_frames_total": "frames",
}
TICKS = os.sysconf("SC_CLK_TCK")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise ValueError("no VmRSS")


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        # Fields after the command name (which may hold spaces): utime and stime are fields 14 and 15.
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])


def metrics(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    got = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in METRICS:
            got[METRICS[name]] = int(float(value))
    return got


def exchange(out):
    with open(f"{out}/stats.json") as f:
        st = json.load(f)
    c = st["connections"]
    return {"ex_ws_open": c["ws_open"], "ex_ws_open_max": c["ws_open_max"], "ex_aggtrades_sent": st["sent"]["aggTrade"]}


def sample(out, pids, port, prev, dt):
    row, errors = {}, 0
    for name, pid in zip(["rusto", "exchange"], pids):
        try:
            row[f"{name}_rss_kib"] = rss_kib(pid)
            ticks = cpu_ticks(pid)
            if name in prev and dt > 0:
                row[f"{name}_cpu_pct"] = round(100 * (ticks - prev[name]) / TICKS / dt, 1)
            prev[name] = ticks
        except (OSError, ValueError, IndexError):
            errors += 1
    for read in (lambda: metrics(port), lambda: exchange(out)):
        try:
            row.update(read())
        except (OSError, ValueError, KeyError):
            errors += 1
    row["errors"] = errors
    return row


def main():
    out, rusto, ex, port, every = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
    start = last = time.monotonic()
    prev = {}
    sample(out, (rusto, ex), port, prev, 0)
    with open(f"{out}/samples.tsv", "w") as f:
        f.write("\t".join(COLUMNS) + "\n")
        due = start + every
        while os.path.exists(f"/proc/{rusto}"):
            if time.monotonic() < due:
                time.sleep(0.2)
                continue
            now = time.monotonic()
            row = sample(out, (rusto, ex), port, prev, now - last)
            last, due = now, due + every
            row["t_s"] = round(now - start)
            f.write("\t".join(str(row.get(c, "-")) for c in COLUMNS) + "\n")
            f.flush()


if __name__ == "__main__":
    main()
