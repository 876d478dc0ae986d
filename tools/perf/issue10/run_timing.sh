#!/bin/sh
# Paired BEFORE/AFTER compute-cost runs on the bundled sample. Usage: run_timing.sh <session> [pairs]
# BEFORE = /work/wt/base (feffcdc), AFTER = /work/wt/perf (h-perf = main b1f8b85). Fresh --db per run.
# Order within a pair alternates (odd pairs BEFORE first, even pairs AFTER first).
set -eu
S=$1; N=${2:-5}
B=/work/wt/base/target/release/rusto; A=/work/wt/perf/target/release/rusto
O=/work/wt/perf-scripts/out/$S; mkdir -p $O
cd /work/wt/perf
cfgs="default loose-signals ab-variants realism-like"
run() { # bin tag cfg r
  case $3 in default) o="";; realism-like) o="--config /work/wt/perf-scripts/realism-like.toml";;
    realism-full) o="--config tests/config/realism.toml";; *) o="--config tests/config/$3.toml";; esac
  f=$O/$2-$3-r$4; rm -f $f.db
  echo "$(date -u +%T) $2 $3 r$4 $(cut -d' ' -f1-3 /proc/loadavg)" >> $O/timing.log
  $1 $o replay --json --db $f.db > $f.json 2> $f.err
}
for r in $(seq 1 $N); do for c in $cfgs; do
  if [ $((r % 2)) = 1 ]; then run $B before $c $r; run $A after $c $r; else run $A after $c $r; run $B before $c $r; fi
done; run $A after realism-full $r; done
uptime >> $O/timing.log
