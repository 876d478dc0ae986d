#!/usr/bin/env bash
# Issue 11 item 4: rusto live (each idle mode) and rusto-baseline (tokio + tokio-tungstenite + serde_json +
# BTreeMap) on the same rusto-exchange feed at once: TLS on loopback, the bundled real BTCUSDT recording at 1x.
# Prints one table row per run and mode: rusto's tick_trade_bbo p50/p99 and stages, the baseline's in the same run,
# the ratio, and each process's CPU (% of one core over the run).
#
# usage: [NO_BUILD=1] tools/perf/issue11/live.sh [RUNS=3] [SECS=30] [MODES="park adaptive spin"]
# A mode `inline-park` or `inline-spin` runs `[pipeline] layout = "inline"` with that idle mode (the network thread
# runs the engine; its table has no enqueue or ring_wait stage, shown as -).
# Builds the workspace (release) and tools/baseline (its own lock file; not a workspace member, so CI never
# compiles tokio).
set -euo pipefail
RUNS=${1:-3}
SECS=${2:-30}
MODES=${3:-"park adaptive spin"}
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$ROOT"
# NO_BUILD=1 reuses the binaries already built.
if [ -z "${NO_BUILD:-}" ]; then
  cargo build --release --workspace -q
  (cd tools/baseline && cargo build --release -q)
fi
BASE=$ROOT/tools/baseline/target/release/rusto-baseline
REC=$ROOT/data/sample/btcusdt_20230404.dat.gz
OUT=$(mktemp -d /tmp/rusto-issue11-live.XXXXXX)
echo "# $(date -u +%FT%TZ) $(nproc) vCPU, load average at start: $(cut -d' ' -f1-3 /proc/loadavg); logs in $OUT"
printf '%-4s %-11s %14s %14s %14s %7s %7s %8s | %s\n' run mode rusto_p50 rusto_p99 base_p50 ratio cpu% base_cpu% \
  "rusto stages p50 (socket_read tls_decrypt ws_frame parse enqueue ring_wait compute)"
for run in $(seq 1 "$RUNS"); do
  for mode in $MODES; do
    d=$OUT/$run-$mode
    mkdir -p "$d"
    target/release/rusto-exchange --listen 127.0.0.1:0 --ca-out "$d/ca.pem" --recording "$REC" --speed 1 \
      --loops 0 --duration-secs $((SECS + 20)) >"$d/exchange.out" 2>"$d/exchange.err" &
    ex=$!
    for _ in $(seq 1 100); do [ -s "$d/exchange.out" ] && break; sleep 0.1; done
    port=$(head -1 "$d/exchange.out" | sed 's/.*://; s/[^0-9].*//')
    cat >"$d/rusto.toml" <<CFG
[live]
ws_url = "wss://localhost:$port"
rest_url = "https://localhost:$port"
ca_file = "$d/ca.pem"
symbols = ["BTCUSDT"]
report_interval_s = 0
time_offset_ms_max = 1e9
[pipeline]
idle = "${mode#inline-}"
layout = "$([ "${mode#inline-}" = "$mode" ] && echo split || echo inline)"
CFG
    /usr/bin/time -f '%e %U %S' -o "$d/rusto.time" target/release/rusto --config "$d/rusto.toml" live --json \
      --duration-secs "$SECS" >"$d/rusto.json" 2>"$d/rusto.err" &
    r=$!
    "$BASE" --ws "wss://localhost:$port" --ca "$d/ca.pem" --symbol btcusdt --duration-secs "$SECS" \
      >"$d/baseline.json" 2>"$d/baseline.err" &
    b=$!
    wait "$r" || echo "rusto failed: $d/rusto.err" >&2
    wait "$b" || echo "baseline failed: $d/baseline.err" >&2
    kill "$ex" 2>/dev/null || true
    wait "$ex" 2>/dev/null || true
    python3 - "$d" "$run" "$mode" <<'PY'
import json, sys
d, run, mode = sys.argv[1:]
r = json.load(open(f"{d}/rusto.json"))
b = json.loads(open(f"{d}/baseline.json").read().strip().splitlines()[-1])
e, u, s = map(float, open(f"{d}/rusto.time").read().split()[-3:])
lat = r["latency_ns"]
us = lambda ns: f"{ns / 1e3:.1f} us"
t = lat["tick_trade_bbo"]
bb = b["tick_trade_bbo"]
stages = " ".join(us(lat[k]["p50"]) if k in lat else "-" for k in
                  ["socket_read", "tls_decrypt", "ws_frame", "parse", "enqueue", "ring_wait", "compute"])
cpu = 100 * (u + s) / e
print(f"{run:<4} {mode:<11} {us(t['p50']):>14} {us(t['p99']):>14} {us(bb['p50']):>14} "
      f"{t['p50'] / max(bb['p50'], 1):>7.2f} {cpu:>7.1f} {b['cpu_pct']:>8.1f} | {stages} "
      f"(n={t['count']}/{bb['count']})")
PY
  done
done
echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
