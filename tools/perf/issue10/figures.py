#!/usr/bin/env python3
"""Compute-cost tables from out/<session>/*.json: per run, medians, median of paired (after - before) differences."""
import json, statistics as st, sys, glob, os
SS = sys.argv[1:]; S = "+".join(SS)
cfgs = ["default", "loose-signals", "ab-variants", "realism-like"]
def load(tag, c, sr):
    d = json.load(open(f"/work/wt/perf-scripts/out/{sr[0]}/{tag}-{c}-r{sr[1]}.json")); l = d["latency_ns"]
    return dict(cp50=l["compute"]["p50"], cp99=l["compute"]["p99"], pp50=l["position"]["p50"],
                pn=l["position"]["count"], n=l["compute"]["count"], mal=d["malformed"])
runs = [(x, int(f.rsplit("-r", 1)[1][:-5])) for x in SS for f in sorted(glob.glob(f"/work/wt/perf-scripts/out/{x}/before-default-r*.json"))]
print(f"session {S}, {len(runs)} pairs\n")
print("| config | run | before compute p50 | after | Δ | before compute p99 | after | before position p50 | after | position count b/a | compute count b/a |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
summ = []
for c in cfgs:
    B = [load("before", c, r) for r in runs]; A = [load("after", c, r) for r in runs]
    for r, b, a in zip(runs, B, A):
        assert b["mal"] == 0 and a["mal"] == 0
        print(f"| {c} | {r[0]} r{r[1]} | {b['cp50']} | {a['cp50']} | {a['cp50']-b['cp50']:+d} | {b['cp99']} | {a['cp99']} | {b['pp50']} | {a['pp50']} | {b['pn']}/{a['pn']} | {b['n']}/{a['n']} |")
    m = lambda L, k: st.median(x[k] for x in L)
    d = lambda k: st.median(a[k] - b[k] for a, b in zip(A, B))
    summ.append((c, m(B, "cp50"), m(A, "cp50"), d("cp50"), m(B, "cp99"), m(A, "cp99"), d("cp99"), m(B, "pp50"), m(A, "pp50"), d("pp50")))
print("\n| config | compute p50 before → after (medians) | median paired Δ p50 | compute p99 before → after | median paired Δ p99 | position p50 before → after | median paired Δ |")
print("|---|---|---:|---|---:|---|---:|")
for s in summ:
    print(f"| {s[0]} | {s[1]:g} → {s[2]:g} | **{s[3]:+g}** | {s[4]:g} → {s[5]:g} | {s[6]:+g} | {s[7]:g} → {s[8]:g} | {s[9]:+g} |")
full = [load("after", "realism-full", r) for r in runs if os.path.exists(f"/work/wt/perf-scripts/out/{r[0]}/after-realism-full-r{r[1]}.json")]
if full:
    print(f"\nAFTER only, full tests/config/realism.toml (5 traders): compute p50 {[x['cp50'] for x in full]} median {st.median(x['cp50'] for x in full):g}; "
          f"p99 median {st.median(x['cp99'] for x in full):g}; position p50 median {st.median(x['pp50'] for x in full):g} (count {full[0]['pn']})")
