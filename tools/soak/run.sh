#!/usr/bin/env bash
# Issue 13 section 4, the soak: `rusto live` (paper mode, the default inline layout, the metrics endpoint on) against
# `rusto-exchange --synthetic N` on loopback TLS at SPEED x, for SECS seconds, with rusto's proactive connection
# rotation every 30 s (`[live] rotate_after_s = 30`; the exchange closes connections older than 45 s
# (`--max-conn-secs 45`), so a rotation that did not happen shows up as a `max_age` close) and every websocket
# dropped without a close frame every DROP_EVERY seconds (`--drop-connections --fault-every-secs`).
#
# Every SAMPLE seconds (10, or less for short runs) it records rusto's and the exchange's RSS (/proc/PID/status
# VmRSS) and CPU, rusto's open connections and connection-table slots (the metrics endpoint) and the exchange's
# open websockets (its stats file). The exchange's feed ends first (`--duration-secs`), rusto reads everything that
# was sent and stops a few seconds later, so the counts compare exactly. At the end it asserts (exit status 1 and a
# FAIL line per broken rule otherwise):
#   - flat memory: after a warm-up of WARMUP s (default 600, at most SECS/2) and with W = min(600, (SECS -
#     WARMUP)/3) s, rusto's largest RSS sample of the last W s is at most its largest of [WARMUP, WARMUP + W) plus
#     2 MiB + 1 % (the warm-up covers the resident memory rusto gains during its first minutes, about 10 at
#     speed 20, before it levels off: PERF.md "Soak");
#   - a bounded connection table: rusto's connection-table high-water mark (`net.conn_slots_max`) and the
#     exchange's most websockets open at once (`connections.ws_open_max`) at most 4 per route (8), no connection
#     closed by the exchange for its age (`ws_closed.max_age` 0), rotations at least SECS/30, every drop fired seen;
#   - exact counts: per symbol, rusto's trades (market + non-market + duplicates + out-of-order, all counted)
#     equal the exchange's aggTrade frames sent to it, and the depth, bookTicker and markPrice frames parsed equal
#     those sent; no malformed frame, no ring drop, no lost record;
#   - a clean audit: per symbol the book audit compared > 0 bookTickers and all matched, no crossed book; the
#     database's run row `finished`, no database write error.
# Results (samples, the assertions, per-symbol counts, the latency table) go to $OUT/results.md, printed at the end.
#
# usage: [NO_BUILD=1] [OUT=DIR] [WARMUP=600] tools/soak/run.sh [SECS=3600] [SPEED=10] [DROP_EVERY=180] [SYMBOLS=10]
set -euo pipefail
SECS=${1:-3600}
SPEED=${2:-10}
DROP_EVERY=${3:-180}
NSYM=${4:-10}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
if [ -z "${NO_BUILD:-}" ]; then
  cargo build --release --workspace -q
fi
OUT=${OUT:-$(mktemp -d /tmp/rusto-soak.XXXXXX)}
mkdir -p "$OUT"
WARMUP=${WARMUP:-600}
WARMUP=$((WARMUP < SECS / 2 ? WARMUP : SECS / 2))
W=$(((SECS - WARMUP) / 3 < 600 ? (SECS - WARMUP) / 3 : 600))
SAMPLE=$((W / 20 < 10 ? (W / 20 > 2 ? W / 20 : 2) : 10))
echo "start: $(date -u +%FT%TZ) soak ${SECS}s, speed ${SPEED}, drops every ${DROP_EVERY}s, $NSYM symbols;" \
  "$(nproc) vCPU, uptime: $(uptime); logs in $OUT" | tee "$OUT/start.txt"

/usr/bin/time -f '%e %U %S %M' -o "$OUT/exchange.time" target/release/rusto-exchange --listen 127.0.0.1:0 \
  --ca-out "$OUT/ca.pem" --synthetic "$NSYM" --seed 13 --speed "$SPEED" --max-conn-secs 45 \
  --drop-connections --fault-after-secs "$DROP_EVERY" --fault-every-secs "$DROP_EVERY" \
  --duration-secs $((SECS + 3)) --stats-out "$OUT/stats.json" >"$OUT/exchange.out" 2>"$OUT/exchange.err" &
ex_time=$!
for _ in $(seq 1 100); do [ -s "$OUT/exchange.out" ] && break; sleep 0.1; done
port=$(head -1 "$OUT/exchange.out" | sed 's/.*://; s/[^0-9].*//')
[ -n "$port" ] || { echo "FAIL: the exchange did not start: $OUT/exchange.err" >&2; exit 1; }
mport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
syms=$(python3 -c "import sys; print(', '.join(f'\"SYM{i}USDT\"' for i in range($NSYM)))")
cat >"$OUT/rusto.toml" <<CFG
[live]
ws_url = "wss://localhost:$port"
rest_url = "https://localhost:$port"
ca_file = "$OUT/ca.pem"
symbols = [$syms]
rotate_after_s = 30
report_interval_s = 0
time_offset_ms_max = 1e9
[metrics]
listen = "127.0.0.1:$mport"
CFG
/usr/bin/time -f '%e %U %S %M' -o "$OUT/rusto.time" target/release/rusto --config "$OUT/rusto.toml" live --json \
  --duration-secs $((SECS + 10)) --db "$OUT/live.db" >"$OUT/rusto.json" 2>"$OUT/rusto.err" &
r_time=$!
# The processes under /usr/bin/time: their children.
sleep 1
rusto_pid=$(pgrep -P "$r_time" -x rusto || true)
ex_pid=$(pgrep -P "$ex_time" -x rusto-exchange || true)
[ -n "$rusto_pid" ] && [ -n "$ex_pid" ] || { echo "FAIL: rusto or the exchange is not running" >&2; exit 1; }
python3 "$ROOT/tools/soak/sample.py" "$OUT" "$rusto_pid" "$ex_pid" "$mport" "$SAMPLE" &
sampler=$!
rc=0
wait "$r_time" || rc=$?
wait "$ex_time" || true
wait "$sampler" || true
echo "$(date -u +%FT%TZ) uptime: $(uptime)" >"$OUT/end.txt"
python3 "$ROOT/tools/soak/check.py" "$OUT" "$SECS" "$SPEED" "$DROP_EVERY" "$NSYM" "$WARMUP" "$rc"
