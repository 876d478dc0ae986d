#!/usr/bin/env python3
"""Regenerates fuzz/seeds/ from the real recordings in data/sample/*.gz and tests/data/*.txt, and the
`parse_config` seeds from config/*.toml and tests/config/*.toml.

Every seed is a real frame (or line) copied byte for byte, or a real frame cut short or changed in one named way
(the file name says how). Nothing is invented. Run from anywhere: `python3 fuzz/make_seeds.py`.
"""

import gzip
import json
import re
import shutil
import struct
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "fuzz" / "seeds"
HFT = [ROOT / "data" / "sample" / n for n in ("btcusdt_20230404.dat.gz", "btcusdt_20230405.dat.gz")]
CF_WS = ROOT / "tests" / "data" / "BINANCE_FUTURES.ws.1.0.txt"
CF_HTTP = ROOT / "tests" / "data" / "BINANCE_FUTURES.http.0.0.txt"
CF_INFO = ROOT / "tests" / "data" / "BINANCE_FUTURES.0.txt"


def hft_lines():
    out = []
    for p in HFT:
        with gzip.open(p, "rb") as f:
            out += [l.rstrip(b"\n") for l in f]
    return out


def hft_frame(line):
    return line.split(b" ", 1)[1]


def cf_frame(line):
    return line.split(b": ", 1)[1]


def event(frame):
    m = re.search(rb'"e":"(\w+)"', frame)
    return m.group(1).decode() if m else None


def inner(frame):
    """The `data` object of a combined-stream frame, as the raw (single-stream) endpoint sends it."""
    i = frame.index(b'"data":') + len(b'"data":')
    assert frame.endswith(b"}}")
    return frame[i:-1]


def first_levels(frame, n):
    """A snapshot body cut to its first `n` levels per side (the rest of the bytes untouched)."""

    def cut(text, key):
        i = text.index(key)
        j = text.index(b"]]", i) + 2  # end of this side
        side = text[i:j]
        starts = [m.start() for m in re.finditer(rb"\[\"", side)]
        if len(starts) > n:
            # keep levels [0, n): cut right before the separator of level n
            k = side.rindex(b"]", 0, starts[n]) + 1
            side = side[:k] + b"]"
        return text[:i] + side + text[j:]

    return cut(cut(frame, b'"bids"'), b'"asks"')


def write(target, name, data):
    d = SEEDS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def pick(frames, pred, k=0):
    return [f for f in frames if pred(f)][k]


def parse_frame_seeds(hl, cw, ch):
    hf = [hft_frame(l) for l in hl]
    cf = [cf_frame(l) for l in cw if re.match(rb"^\d", l)]
    t = "parse_frame"
    ticker = pick(hf, lambda f: event(f) == "bookTicker")
    trade_m = pick(hf, lambda f: event(f) == "trade" and b'"m":true' in f)
    trade_t = pick(hf, lambda f: event(f) == "trade" and b'"m":false' in f)
    insurance = pick(hf, lambda f: b"INSURANCE_FUND" in f)
    depths = sorted((f for f in hf if event(f) == "depthUpdate"), key=len)
    depth_small = depths[0]
    depth_zero = pick(depths, lambda f: b'.000"]' in f and len(f) < 600)
    depth_mid = pick(depths, lambda f: len(f) > 900 and len(f) < 1400)
    mark = pick(hf, lambda f: event(f) == "markPriceUpdate")
    snap = pick(hf, lambda f: f.startswith(b'{"lastUpdateId"'))
    write(t, "hft-bookTicker", ticker)
    write(t, "hft-trade-buyer-maker", trade_m)
    write(t, "hft-trade-taker-buy", trade_t)
    write(t, "hft-trade-insurance-fund", insurance)
    write(t, "hft-depth-smallest", depth_small)
    write(t, "hft-depth-zero-qty", depth_zero)
    write(t, "hft-depth-1k", depth_mid)
    write(t, "hft-markPrice", mark)
    write(t, "hft-snapshot-first3", first_levels(snap, 3))
    write(t, "hft-snapshot-first1", first_levels(snap, 1))
    write(t, "hft-depth-raw-stream", inner(depth_small))
    write(t, "hft-trade-raw-stream", inner(trade_m))
    write(t, "hft-markPrice-raw-stream", inner(mark))
    write(t, "cut-hft-bookTicker-half", ticker[: len(ticker) // 2])
    write(t, "cut-hft-depth-mid-level", depth_mid[: depth_mid.index(b'"a":[') + 12])
    write(t, "cut-hft-snapshot-head", snap[:120])

    agg = [f for f in cf if event(f) == "aggTrade"]
    write(t, "cf-aggTrade", agg[0])
    write(t, "cf-aggTrade-other", pick(agg, lambda f: b"SUSHI" not in f))
    write(t, "cf-aggTrade-buyer-maker", pick(agg, lambda f: b'"m":true' in f))
    write(t, "cf-aggTrade-raw-stream", inner(agg[0]))
    cdepth = sorted((f for f in cf if event(f) == "depthUpdate"), key=len)
    write(t, "cf-depth-smallest", cdepth[0])
    write(t, "cf-depth-300b", pick(cdepth, lambda f: len(f) > 300))
    write(t, "cf-bookTicker", pick(cf, lambda f: event(f) == "bookTicker"))
    write(t, "cf-kline-unknown-event", pick(cf, lambda f: event(f) == "kline"))
    csnap = [cf_frame(l) for l in ch]
    write(t, "cf-snapshot-first3", first_levels(csnap[0], 3))
    write(t, "cf-snapshot-other-first2", first_levels(csnap[1], 2))
    write(t, "cut-cf-aggTrade", agg[0][:100])

    # Real frames changed in one named way, for paths real data never takes.
    write(t, "mut-trade-price-number", trade_m.replace(b'"p":"28145.10"', b'"p":28145.10'))
    write(t, "mut-trade-price-comma", trade_m.replace(b'"28145.10"', b'"28,145.10"'))
    write(t, "mut-depth-partial-stream", depth_small.replace(b"@depth@0ms", b"@depth5@100ms", 1))
    write(t, "mut-ticker-escaped-symbol", ticker.replace(b'"s":"BTCUSDT"', b'"s":"BTC\\u0055SDT"'))
    write(t, "mut-aggTrade-float-time", agg[0].replace(b'"E":', b'"E":1.5e3,"x":', 1))
    write(t, "mut-snapshot-no-bids", re.sub(rb'"bids": \[.*?\]\], ', b'"bids": [], ', first_levels(snap, 2)))
    write(t, "mut-trade-pretty", json.dumps(json.loads(trade_t), indent=1).encode())

    # exchangeInfo cut to its first two symbols (the bytes before and after the symbols array untouched).
    info_line = CF_INFO.read_bytes().split(b"\n")[0]
    body = info_line.split(b": ", 1)[1]
    start = body.index(b'"symbols":[') + len(b'"symbols":[')
    i, depth, ends, in_str = start, 0, [], False
    while len(ends) < 2:
        c = body[i : i + 1]
        if in_str:
            in_str = c != b'"' or body[i - 1 : i] == b"\\"
        elif c == b'"':
            in_str = True
        elif c in b"[{":
            depth += 1
        elif c in b"]}":
            depth -= 1
            if depth == 0:
                ends.append(i + 1)
        i += 1
    tail = body[body.rindex(b"]") :]  # `]` closing the symbols array and the rest of the body
    cut = body[: ends[1]] + tail
    json.loads(cut)
    write(t, "cf-exchangeInfo-first2", cut)


def classify_line_seeds(hl, cw, ch):
    t = "classify_line"
    lines = {
        "hft-bookTicker": pick(hl, lambda l: b"bookTicker" in l),
        "hft-trade": pick(hl, lambda l: b'"e":"trade"' in l),
        "hft-depth": sorted((l for l in hl if b"depthUpdate" in l), key=len)[0],
        "hft-snapshot-cut": pick(hl, lambda l: b"lastUpdateId" in l)[:200],
        "cf-connection": cw[0],
        "cf-aggTrade": pick(cw, lambda l: b"aggTrade" in l and re.match(rb"^\d", l) is not None),
        "cf-bookTicker": pick(cw, lambda l: b'"e":"bookTicker"' in l),
        "cf-http-snapshot-cut": ch[0][:220],
        "cf-configuration": pick(CF_INFO.read_bytes().split(b"\n"), lambda l: l.startswith(b"configuration")),
    }
    ns = lines["hft-trade"].replace(b" ", b"123 ", 1)
    lines["mut-hft-trade-ns-ts"] = ns
    lines["mut-hft-trade-ms-ts"] = lines["hft-trade"][3:]
    lines["mut-cf-bookTicker-crlf"] = lines["cf-bookTicker"] + b"\r"
    for name, data in lines.items():
        write(t, name, data)


# --- book_tape: real depth streams encoded in the tape format of fuzz/src/book_tape.rs ---------------------------

def units(s):
    return int(s.replace(".", ""))


class TapeWriter:
    def __init__(self):
        self.b = bytearray()
        self.prev_u = 0
        self.mid = 0

    def idv(self, v):
        d = v - self.prev_u
        if -127 <= d <= 127:
            self.b += struct.pack("<b", d)
        else:
            self.b += b"\x80" + struct.pack("<q", v)

    def levels(self, bids, asks, cap):
        def fit(side):
            out = []
            for p, q in side:
                d = units(p) - self.mid
                if -32768 <= d <= 32767:
                    out.append((d, min(units(q), 65535)))
            return out[:cap]

        bids, asks = fit(bids), fit(asks)
        self.b += bytes([len(bids), len(asks)])
        for d, q in bids + asks:
            self.b += struct.pack("<hH", d, q)

    def set_mid(self, mid):
        self.mid = mid
        self.b += b"\x04" + struct.pack("<q", mid)

    def snapshot(self, doc, cap):
        self.b += b"\x03"
        self.idv(doc["lastUpdateId"])
        self.levels(doc["bids"], doc["asks"], cap)

    def depth(self, d, cap=24):
        self.b += b"\x00"
        self.idv(d["U"])
        self.idv(d["u"])
        self.idv(d["pu"])
        self.levels(d["b"], d["a"], cap)
        self.prev_u = d["u"]

    def invalidate(self):
        self.b += b"\x06"


def book_tape_seeds(hl, cw, ch):
    t = "book_tape"
    # hftbacktest BTCUSDT: the one inline snapshot and the depth diffs around it, in file order.
    frames = [json.loads(hft_frame(l)) for l in hl[:400]]
    si = next(i for i, f in enumerate(frames) if "lastUpdateId" in f)
    snap = frames[si]
    before = [f["data"] for f in frames[:si] if f.get("data", {}).get("e") == "depthUpdate"]
    after = [f["data"] for f in frames[si + 1 :] if f.get("data", {}).get("e") == "depthUpdate"]
    mid = units(snap["bids"][0][0])

    w = TapeWriter()  # buffered diffs, then the snapshot, then live diffs
    w.set_mid(mid)
    for d in before[-3:]:
        w.depth(d)
    w.snapshot(snap, 16)
    for d in after[:10]:
        w.depth(d)
    write(t, "hft-buffered-then-snapshot", bytes(w.b))

    w = TapeWriter()  # snapshot first (book fills past max_levels), then live diffs
    w.set_mid(mid)
    w.snapshot(snap, 100)
    for d in after[:12]:
        w.depth(d)
    write(t, "hft-snapshot-100-levels", bytes(w.b))

    w = TapeWriter()  # one diff dropped (a gap), the same snapshot again, more diffs
    w.set_mid(mid)
    w.snapshot(snap, 16)
    for d in after[:4] + after[5:9]:
        w.depth(d)
    w.snapshot(snap, 16)
    for d in after[9:12]:
        w.depth(d)
    write(t, "mut-hft-gap-and-old-snapshot", bytes(w.b))

    w = TapeWriter()  # invalidated (frame dropped upstream) while synced
    w.set_mid(mid)
    w.snapshot(snap, 16)
    for d in after[:5]:
        w.depth(d)
    w.invalidate()
    for d in after[5:8]:
        w.depth(d)
    write(t, "mut-hft-invalidate", bytes(w.b))

    # cryptofeed: each symbol's diffs before and after its REST snapshot, by local time.
    snaps = {}
    for l in ch:
        url, rest = l.split(b" -> ", 1)
        ts, body = rest.split(b": ", 1)
        sym = re.search(rb"symbol=(\w+)", url).group(1).decode()
        snaps[sym] = (float(ts), json.loads(body))
    ws = []
    for l in cw:
        if re.match(rb"^\d", l) and b"depthUpdate" in l:
            ts, body = l.split(b": ", 1)
            ws.append((float(ts), json.loads(body)["data"]))
    for sym in ["SUSHIUSDT", "AKROUSDT"]:
        sts, sdoc = snaps[sym]
        diffs = [(ts, d) for ts, d in ws if d["s"] == sym]
        pre = [d for ts, d in diffs if ts < sts][-6:]
        post = [d for ts, d in diffs if ts >= sts][:10]
        w = TapeWriter()
        w.set_mid(units(sdoc["bids"][0][0]))
        for d in pre:
            w.depth(d)
        w.snapshot(sdoc, 20)
        for d in post:
            w.depth(d)
        write(t, f"cf-{sym.lower()}-sync", bytes(w.b))


def parse_config_seeds():
    t = "parse_config"
    for p in sorted(list((ROOT / "config").glob("*.toml")) + list((ROOT / "tests" / "config").glob("*.toml"))):
        text = p.read_bytes()
        write(t, p.stem, text)
        # The same file with one line cut short (a syntax error mid-file).
        lines = text.split(b"\n")
        i = next((k for k, l in enumerate(lines) if b" = " in l and k > len(lines) // 2), None)
        if i is not None:
            lines[i] = lines[i][: lines[i].index(b" = ") + 4]
            write(t, f"cut-{p.stem}-line{i + 1}", b"\n".join(lines))


def main():
    if SEEDS.exists():
        shutil.rmtree(SEEDS)
    hl = hft_lines()
    cw = CF_WS.read_bytes().split(b"\n")
    cw = [l for l in cw if l]
    ch = [l for l in CF_HTTP.read_bytes().split(b"\n") if l]
    parse_frame_seeds(hl, cw, ch)
    classify_line_seeds(hl, cw, ch)
    book_tape_seeds(hl, cw, ch)
    parse_config_seeds()
    for d in sorted(SEEDS.iterdir()):
        files = list(d.iterdir())
        print(f"{d.name}: {len(files)} seeds, {sum(f.stat().st_size for f in files)} bytes")


if __name__ == "__main__":
    main()
