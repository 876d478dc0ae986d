#!/usr/bin/env bash
# Issue 12: the order path on loopback. rusto in testnet mode against rusto-exchange (real TLS, HMAC-signed
# WebSocket API, user data stream), the bundled real BTCUSDT recording at 10x, the loose signals of
# tests/config/realism.toml (its [bars]..[position] sections, without the variants), the default inline layout.
# Prints the order stages of the latency table (order_write: decision -> frame written; order_ack: frame -> answer;
# order_fill: decision -> first fill of a MARKET order) and tick_to_decision, p50/p90/p99 and counts, per run.
#
# EXCHANGE_FLAGS adds exchange faults, e.g. EXCHANGE_FLAGS="--ws-api-down-after 1": the WebSocket API goes down
# after the listenKey and every order takes the REST fallback (order_write and order_ack then stay empty: they time
# the WebSocket API's frames; order_fill still times decision -> first fill).
#
# usage: [NO_BUILD=1] [EXCHANGE_FLAGS=...] tools/perf/issue12/orders.sh [RUNS=1] [SECS=55]
set -euo pipefail
RUNS=${1:-1}
SECS=${2:-55}
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$ROOT"
if [ -z "${NO_BUILD:-}" ]; then
  cargo build --release --workspace -q
fi
OUT=$(mktemp -d /tmp/rusto-issue12-orders.XXXXXX)
echo "# $(date -u +%FT%TZ) $(nproc) vCPU, load average at start: $(cut -d' ' -f1-3 /proc/loadavg); logs in $OUT"
for run in $(seq 1 "$RUNS"); do
  d=$OUT/$run
  mkdir -p "$d"
  target/release/rusto-exchange --listen 127.0.0.1:0 --duration-secs $((SECS + 15)) --ca-out "$d/ca.pem" \
    --stats-out "$d/stats.json" --speed 10 --loops 1 \
    --recording data/sample/btcusdt_20230404.dat.gz data/sample/btcusdt_20230405.dat.gz \
    --api-key perfKey$run --api-secret perfSecret$run ${EXCHANGE_FLAGS:-} >"$d/exchange.out" 2>"$d/exchange.err" &
  ex=$!
  for _ in $(seq 1 100); do [ -s "$d/exchange.out" ] && break; sleep 0.1; done
  port=$(head -1 "$d/exchange.out" | sed 's/.*://; s/[^0-9].*//')
  {
    printf '[live]\nws_url = "wss://localhost:%s"\nrest_url = "https://localhost:%s"\nca_file = "%s"\n' "$port" "$port" "$d/ca.pem"
    printf 'symbols = ["BTCUSDT"]\ntrade_stream = "trade"\nhealth_interval_s = 1\nreport_interval_s = 0\ntime_offset_ms_max = 1e9\n'
    sed -n '/^\[bars\]/,/^\[\[variants\]\]/p' tests/config/realism.toml | grep -v '^\[\[variants\]\]'
    printf '[execution]\nmode = "testnet"\nws_api_url = "wss://localhost:%s/ws-fapi/v1"\n' "$port"
    printf 'user_stream_url = "wss://localhost:%s/private/ws"\norder_notional_max = 1e6\nsymbol_notional_max = 1e6\n' "$port"
    printf 'total_notional_max = 1e6\norders_per_min_max = 240\ndaily_loss_max = 1e6\nworking_type = "contract"\nflatten_on_exit = true\n'
  } >"$d/rusto.toml"
  RUSTO_API_KEY=perfKey$run RUSTO_API_SECRET=perfSecret$run target/release/rusto --config "$d/rusto.toml" live --json \
    --duration-secs "$SECS" --db "$d/live.db" >"$d/rusto.json" 2>"$d/rusto.err"
  kill "$ex" 2>/dev/null || true
  wait "$ex" 2>/dev/null || true
  python3 - "$d/rusto.json" "$run" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
lat = r["latency_ns"]
def f(s):
    x = lat.get(s)
    return "-" if not x or not x["count"] else "%.1f / %.1f / %.1f us (%d)" % (x["p50"] / 1e3, x["p90"] / 1e3, x["p99"] / 1e3, x["count"])
print("run %s: tick_to_decision %s | order_write %s | order_ack %s | order_fill %s" % (
    sys.argv[2], f("tick_to_decision"), f("order_write"), f("order_ack"), f("order_fill")))
PY
  grep -h "orders: " "$d/rusto.err" | sed 's/.*orders: /  orders: /' || true
done
echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
