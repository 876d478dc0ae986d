//! The hand-written fast path gives exactly the events of the simd-json path, on every frame of every real
//! recording (the bundled sample, tests/data, and ../shared/data when present), and falls back when it must.

use std::path::{Path, PathBuf};

use rusto::ingest::{FrameMeta, MAX_EVENTS_PER_FRAME, ParseError, Parser};
use rusto::recording::{Line, classify};
use rusto::types::{EventKind, MarketEvent};
use rusto::types::{InternError, SymbolName, SymbolTable};

fn read_text(p: &Path) -> Vec<u8> {
    let raw = std::fs::read(p).unwrap();
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut s = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&raw[..]), &mut s).unwrap();
        s
    } else {
        raw
    }
}

/// A directory of the shared recordings: `../shared/data/<name>` from the main checkout, `../../shared/data/<name>`
/// from a helper's worktree (`/work/wt/<name>`); `None` when neither is there.
fn shared(name: &str) -> Option<PathBuf> {
    ["../shared/data", "../../shared/data"].iter().map(|d| Path::new(d).join(name)).find(|p| p.exists())
}

fn recordings() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = vec![
        "data/sample/btcusdt_20230404.dat.gz".into(),
        "data/sample/btcusdt_20230405.dat.gz".into(),
        "tests/data/BINANCE_FUTURES.ws.1.0.txt".into(),
        "tests/data/BINANCE_FUTURES.http.0.0.txt".into(),
    ];
    for dir in ["cryptofeed-binance-futures-raw", "hftbacktest-usdm-raw"].into_iter().filter_map(shared) {
        if let Ok(rd) = std::fs::read_dir(dir) {
            let mut files: Vec<PathBuf> = rd.map(|e| e.unwrap().path()).collect();
            files.sort();
            v.extend(files);
        }
    }
    v
}

#[test]
fn fast_path_matches_simd_json_on_every_real_frame() {
    let (mut fast, mut slow) =
        (Parser::new(SymbolTable::new(256, vec![]), 4 << 20), Parser::new(SymbolTable::new(256, vec![]), 4 << 20));
    slow.set_fast_path(false);
    let (mut a, mut b) =
        (Vec::with_capacity(MAX_EVENTS_PER_FRAME), Vec::<MarketEvent>::with_capacity(MAX_EVENTS_PER_FRAME));
    let mut frames = 0u64;
    for f in recordings() {
        let text = read_text(&f);
        for line in text.split(|&c| c == b'\n') {
            let Line::Frame { ts_ns, json, url_symbol } = classify(line) else {
                continue;
            };
            let meta = FrameMeta {
                local_ts_ns: ts_ns,
                stamp_ns: 0,
                snapshot_symbol: url_symbol.or(SymbolName::new(b"BTCUSDT")),
            };
            a.clear();
            b.clear();
            let ra = fast.parse_frame(json, &meta, &mut a);
            let rb = slow.parse_frame(json, &meta, &mut b);
            assert_eq!(ra, rb, "{}: {}", f.display(), String::from_utf8_lossy(&json[..json.len().min(200)]));
            assert_eq!(a, b, "{}: {}", f.display(), String::from_utf8_lossy(&json[..json.len().min(200)]));
            frames += 1;
        }
    }
    // The bundled sample and tests/data alone hold 75 304 frames; ../shared/data adds ≈ 21 000 more.
    let shared = shared("hftbacktest-usdm-raw").is_some();
    assert!(frames >= if shared { 90_000 } else { 75_000 }, "{frames}");
    let hot = fast.stats.trade + fast.stats.depth + fast.stats.book_ticker + fast.stats.mark_price;
    assert_eq!(slow.fast_frames(), 0);
    // Every hot frame of the real recordings is in the fast subset.
    assert!(fast.fast_frames() >= hot, "fast path took {} of {} hot frames", fast.fast_frames(), hot);
}

#[test]
fn fast_path_falls_back_outside_its_subset() {
    let trade = r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1680652700455,"T":1680652700452,"s":"BTCUSDT","t":3535186032,"p":"28145.10","q":"0.002","X":"MARKET","m":true}}"#;
    let variants = [
        trade.replace("\"X\":\"MARKET\"", "\"X\":\"MARKET\",\"z\":1.5"), // float in an unknown field
        trade.replace("\"X\":\"MARKET\"", "\"X\":\"MARK\\u0045T\""),     // escape: same value once unescaped
        trade.replace("\"X\":\"MARKET\"", "\"X\":\"MARKET\",\"o\":{\"k\":[1]}"), // nested object
        format!("  {trade}\n"),                                          // surrounding whitespace (still fast)
        trade.replace("3535186032", "03535186032"),                      // leading zero: invalid JSON
        format!("{trade}x"),                                             // trailing garbage
    ];
    for v in &variants {
        let (mut fast, mut slow) =
            (Parser::new(SymbolTable::new(8, vec![]), 1 << 20), Parser::new(SymbolTable::new(8, vec![]), 1 << 20));
        slow.set_fast_path(false);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let meta = FrameMeta::default();
        assert_eq!(fast.parse_frame(v.as_bytes(), &meta, &mut a), slow.parse_frame(v.as_bytes(), &meta, &mut b), "{v}");
        assert_eq!(a, b, "{v}");
    }
}

/// A fixed-seed mutation pass over real frames of each hot kind (a deterministic stand-in for the cargo-fuzz target,
/// which needs cargo-fuzz installed): each mutant — a byte replaced by one the scanner treats specially, a byte
/// deleted, or a chunk duplicated — must give the same result and the same events with and without the fast path.
/// It exercises the SWAR quote search and decimal conversion and the recorded level spans on malformed input.
#[test]
fn fast_path_matches_simd_json_on_mutated_real_frames() {
    let mut text = read_text(Path::new("data/sample/btcusdt_20230404.dat.gz"));
    text.extend_from_slice(&read_text(Path::new("tests/data/BINANCE_FUTURES.ws.1.0.txt")));
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    let mut per_kind = [0usize; 4];
    for line in text.split(|&c| c == b'\n') {
        let Line::Frame { json, .. } = classify(line) else {
            continue;
        };
        let kind = [&b"aggTrade"[..], b"@trade", b"bookTicker", b"depthUpdate"]
            .iter()
            .position(|k| json.windows(k.len()).any(|w| w == *k));
        if let Some(k) = kind
            && per_kind[k] < 40
        {
            per_kind[k] += 1;
            seeds.push(json.to_vec());
        }
    }
    assert!(per_kind.iter().all(|&n| n > 0), "{per_kind:?}");
    let specials = b"\"\\.,:[]{}-0 9a\x00\x1f\x7f\x80\xff";
    let meta = FrameMeta { snapshot_symbol: SymbolName::new(b"BTCUSDT"), ..FrameMeta::default() };
    let (mut fast, mut slow) =
        (Parser::new(SymbolTable::new(64, vec![]), 1 << 20), Parser::new(SymbolTable::new(64, vec![]), 1 << 20));
    slow.set_fast_path(false);
    let (mut a, mut b) = (Vec::with_capacity(MAX_EVENTS_PER_FRAME), Vec::with_capacity(MAX_EVENTS_PER_FRAME));
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut mutant = Vec::new();
    let mut differ_from_seed = 0u64;
    for round in 0..40_000usize {
        let seed = &seeds[round % seeds.len()];
        mutant.clear();
        mutant.extend_from_slice(seed);
        let at = (next() as usize) % mutant.len();
        match next() % 3 {
            0 => mutant[at] = specials[(next() as usize) % specials.len()],
            1 => {
                mutant.remove(at);
            }
            _ => {
                let end = (at + 1 + (next() as usize) % 12).min(mutant.len());
                let chunk = mutant[at..end].to_vec();
                mutant.splice(at..at, chunk);
            }
        }
        differ_from_seed += u64::from(mutant != *seed);
        a.clear();
        b.clear();
        let ra = fast.parse_frame(&mutant, &meta, &mut a);
        let rb = slow.parse_frame(&mutant, &meta, &mut b);
        assert_eq!(ra, rb, "{}", String::from_utf8_lossy(&mutant));
        assert_eq!(a, b, "{}", String::from_utf8_lossy(&mutant));
    }
    assert!(differ_from_seed > 30_000, "{differ_from_seed}");
    // Both paths saw malformed frames (the mutants) and the fast path still took the ones in its subset.
    assert!(fast.stats.malformed_total() > 0 && fast.fast_frames() > 0);
}

/// Three parsers over the same frames: shape scanners on (the default), the general fast scanner only, simd-json
/// only.
fn three_parsers() -> [Parser; 3] {
    let mut ps = [
        Parser::new(SymbolTable::new(256, vec![]), 4 << 20),
        Parser::new(SymbolTable::new(256, vec![]), 4 << 20),
        Parser::new(SymbolTable::new(256, vec![]), 4 << 20),
    ];
    ps[1].set_shape_scanners(false);
    ps[2].set_fast_path(false);
    ps
}

/// Parses `frame` with each parser and requires the same result and the same events from all three.
fn same_on_all(ps: &mut [Parser; 3], outs: &mut [Vec<MarketEvent>; 3], frame: &[u8], meta: &FrameMeta) {
    let mut rs = Vec::with_capacity(3);
    for (p, out) in ps.iter_mut().zip(outs.iter_mut()) {
        out.clear();
        rs.push(p.parse_frame(frame, meta, out));
    }
    let show = || String::from_utf8_lossy(&frame[..frame.len().min(300)]).into_owned();
    assert_eq!(rs[0], rs[2], "shapes vs simd-json: {}", show());
    assert_eq!(rs[1], rs[2], "general vs simd-json: {}", show());
    assert_eq!(outs[0], outs[2], "shapes vs simd-json: {}", show());
    assert_eq!(outs[1], outs[2], "general vs simd-json: {}", show());
}

#[test]
fn shape_scanners_general_scanner_and_simd_json_agree_on_every_real_frame() {
    let mut ps = three_parsers();
    let mut outs: [Vec<MarketEvent>; 3] = std::array::from_fn(|_| Vec::with_capacity(MAX_EVENTS_PER_FRAME));
    let mut frames = 0u64;
    for f in recordings() {
        let text = read_text(&f);
        for line in text.split(|&c| c == b'\n') {
            let Line::Frame { ts_ns, json, url_symbol } = classify(line) else {
                continue;
            };
            let meta = FrameMeta {
                local_ts_ns: ts_ns,
                stamp_ns: 0,
                snapshot_symbol: url_symbol.or(SymbolName::new(b"BTCUSDT")),
            };
            same_on_all(&mut ps, &mut outs, json, &meta);
            frames += 1;
        }
    }
    assert!(frames >= 75_000, "{frames}");
    // The shape scanners took every trade, bookTicker, depth update and snapshot, but for the depth frames of a
    // symbol whose scales were not known yet (at most a few per symbol: the general path infers them).
    let p = &ps[0];
    let shaped_kinds =
        p.stats.trade + p.stats.non_market_trade + p.stats.book_ticker + p.stats.depth + p.stats.snapshot;
    assert!(p.stats.depth > 30_000 && p.stats.snapshot >= 5, "{} depth, {} snapshots", p.stats.depth, p.stats.snapshot);
    assert!(
        p.shape_frames() <= shaped_kinds && p.shape_frames() + 2 * p.symbols().len() as u64 >= shaped_kinds,
        "shape scanners took {} of {shaped_kinds}",
        p.shape_frames()
    );
    // Both fast parsers took every hot frame (the general one without the shape scanners).
    for p in &ps[..2] {
        let hot = p.stats.trade + p.stats.depth + p.stats.book_ticker + p.stats.mark_price;
        assert!(p.fast_frames() >= hot, "fast path took {} of {} hot frames", p.fast_frames(), hot);
    }
}

/// A frame split around its event object's pairs: what comes before them, the pairs, what comes after.
struct Split {
    head: Vec<u8>,
    body: Vec<Vec<u8>>,
    tail: Vec<u8>,
}

/// The `key:value` pairs of a real frame's event object (its values hold no comma, brace or bracket) and what
/// comes before and after them.
fn pairs(frame: &[u8]) -> Option<Split> {
    let s = frame.windows(5).position(|w| w == b"{\"e\":")? + 1;
    let e = s + frame[s..].iter().position(|&c| c == b'}')?;
    if frame[s..e].iter().any(|&c| c == b'[' || c == b'{') {
        return None;
    }
    let body = frame[s..e].split(|&c| c == b',').map(<[u8]>::to_vec).collect();
    Some(Split { head: frame[..s].to_vec(), body, tail: frame[e..].to_vec() })
}

/// Mutants aimed at the shape scanners and the position-based key matcher, from real aggTrade, trade and
/// bookTicker frames: pairs reordered, removed, duplicated (same or other value), unknown keys added, whitespace
/// around a pair, string values escaped (`\uXXXX` of the same byte, or `\"`), integers made huge (18–21 digits),
/// negative, zero-led, fractional or with an exponent. Each must give the same result and events on all three
/// paths.
#[test]
fn shape_scanners_match_simd_json_on_structured_mutants() {
    let mut text = read_text(Path::new("tests/data/BINANCE_FUTURES.ws.1.0.txt"));
    text.extend_from_slice(&read_text(Path::new("data/sample/btcusdt_20230404.dat.gz")));
    let mut seeds = Vec::new();
    let mut per_kind = [0usize; 3];
    for line in text.split(|&c| c == b'\n') {
        let Line::Frame { json, .. } = classify(line) else {
            continue;
        };
        let kind = [&b"\"aggTrade\""[..], b"\"trade\"", b"\"bookTicker\""]
            .iter()
            .position(|k| json.windows(k.len()).any(|w| w == *k));
        if let Some(k) = kind
            && per_kind[k] < 30
            && let Some(p) = pairs(json)
        {
            per_kind[k] += 1;
            seeds.push(p);
        }
    }
    assert!(per_kind.iter().all(|&n| n >= 20), "{per_kind:?}");
    let mut ps = three_parsers();
    let mut outs: [Vec<MarketEvent>; 3] = std::array::from_fn(|_| Vec::with_capacity(MAX_EVENTS_PER_FRAME));
    let meta = FrameMeta::default();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let huge: [&[u8]; 8] =
        [b"123456789012345678", b"1234567890123456789", b"999999999999999999999", b"-1", b"-0", b"007", b"1.0", b"1e3"];
    let mut accepted = 0u64;
    for round in 0..30_000usize {
        let Split { head, body, tail } = &seeds[round % seeds.len()];
        let mut body = body.clone();
        let n = body.len();
        let at = (next() as usize) % n;
        match next() % 8 {
            0 => body.swap(at, (at + 1 + (next() as usize) % (n - 1)) % n),
            1 => {
                body.remove(at);
            }
            2 => {
                let dup = body[(next() as usize) % n].clone();
                body.insert(at, dup);
            }
            3 => body.insert(
                at,
                [&b"\"z\":1"[..], b"\"x\":\"y\"", b"\"M\":true", b"\"e\":\"aggTrade\""][(next() as usize) % 4].to_vec(),
            ),
            4 => body[at] = [&b" "[..], &body[at], b" "].concat(),
            5 => {
                // An escape inside a string value: the same byte as \u00XX, or an escaped quote.
                let pair = &body[at];
                if let Some(q) = pair.iter().rposition(|&c| c == b'"')
                    && q >= 6
                    && pair[q - 1] != b'"'
                {
                    let c = pair[q - 1];
                    let esc = if next() % 2 == 0 { format!("\\u{:04X}", c).into_bytes() } else { b"\\\"".to_vec() };
                    body[at] = [&pair[..q - 1], &esc[..], &pair[q..]].concat();
                }
            }
            _ => {
                // A number value replaced.
                let pair = &body[at];
                if let Some(colon) = pair.iter().position(|&c| c == b':')
                    && pair.get(colon + 1).is_some_and(u8::is_ascii_digit)
                {
                    body[at] = [&pair[..=colon], huge[(next() as usize) % huge.len()]].concat();
                }
            }
        }
        let mutant = [&head[..], &body.join(&b","[..]), &tail[..]].concat();
        same_on_all(&mut ps, &mut outs, &mutant, &meta);
        accepted += u64::from(outs[2].iter().any(|e| e.kind != EventKind::SymbolDef));
    }
    // Many mutants are still valid events (reorders, extra keys, whitespace, escapes of plain bytes), many are not.
    assert!(accepted > 5_000 && accepted < 28_000, "{accepted}");
    assert!(ps[0].stats.malformed_total() > 0);
}

/// The pairs of the JSON object whose `{` is at `open` in a real frame, split at the commas outside brackets and
/// braces (a real frame has no comma, bracket or brace inside a string), and what comes before and after them.
fn object_pairs(frame: &[u8], open: usize) -> Option<Split> {
    let (mut depth, mut start, mut body) = (0i32, open + 1, Vec::new());
    for (i, &c) in frame.iter().enumerate().skip(open + 1) {
        match c {
            b'[' | b'{' => depth += 1,
            b']' => depth -= 1,
            b'}' if depth == 0 => {
                body.push(frame[start..i].to_vec());
                return Some(Split { head: frame[..=open].to_vec(), body, tail: frame[i..].to_vec() });
            }
            b'}' => depth -= 1,
            b',' if depth == 0 => {
                body.push(frame[start..i].to_vec());
                start = i + 1;
            }
            _ => {}
        }
    }
    None
}

/// The levels of a level-array pair (`"b":[…]`, `"bids": […]`), as (price, quantity) strings; `None` for another pair.
fn levels_of(pair: &[u8]) -> Option<(Vec<u8>, Vec<[String; 2]>)> {
    let colon = pair.iter().position(|&c| c == b':')?;
    let key = pair[..colon].trim_ascii().to_vec();
    if ![&b"\"b\""[..], b"\"a\"", b"\"bids\"", b"\"asks\""].contains(&&key[..]) {
        return None;
    }
    Some((key, serde_json::from_slice(&pair[colon + 1..]).ok()?))
}

/// One level-array mutant of `levels` as JSON text: emptied, a level with a third element or replaced by nested
/// junk or numbers, odd decimals (long, off the grid, negative, malformed), whitespace, an escape, levels
/// duplicated, reordered or cut, a trailing comma, more than `MAX_LEVELS_PER_SIDE` levels.
fn mutate_levels(levels: &[[String; 2]], mut next: impl FnMut() -> u64) -> String {
    let text = |l: &[String; 2]| format!("[\"{}\",\"{}\"]", l[0], l[1]);
    let mut parts: Vec<String> = levels.iter().map(text).collect();
    let n = parts.len();
    let at = if n == 0 { 0 } else { (next() as usize) % n };
    let odd: [&str; 14] = [
        "123456789012.123456789",
        "0.0000000000001",
        "1234567890123456789",
        "-1.5",
        "-0",
        "",
        "1.",
        ".",
        "1e3",
        "00.5",
        "+1",
        " 1",
        "99999999.99999999",
        "0",
    ];
    let junk: [&str; 7] =
        [r#"["1",["2"]]"#, r#"{"p":"1"}"#, r#"[1.5,"2"]"#, r#"["1"]"#, "[]", "null", r#"["1","2",{}]"#];
    match next() % 12 {
        0 => parts.clear(),
        1 if n > 0 => parts[at] = format!("[\"{}\",\"{}\",\"1\"]", levels[at][0], levels[at][1]),
        2 if n > 0 => parts[at] = junk[(next() as usize) % junk.len()].to_owned(),
        3 if n > 0 => {
            let mut l = levels[at].clone();
            l[(next() % 2) as usize] = odd[(next() as usize) % odd.len()].to_owned();
            parts[at] = text(&l);
        }
        4 if n > 0 => {
            // Off the grid: one more digit after the last one.
            let mut l = levels[at].clone();
            let side = (next() % 2) as usize;
            l[side].push(if l[side].contains('.') { '5' } else { '.' });
            if l[side].ends_with('.') {
                l[side].push('5');
            }
            parts[at] = text(&l);
        }
        5 if n > 0 => parts[at] = format!("[ \"{}\" , \"{}\" ]", levels[at][0], levels[at][1]),
        6 if n > 0 => {
            // The last byte of the price as a \u00XX escape (the same value once unescaped).
            let p = &levels[at][0];
            let (head, last) = p.split_at(p.len().saturating_sub(1));
            let esc = last.bytes().map(|c| format!("\\u{c:04X}")).collect::<String>();
            parts[at] = format!("[\"{head}{esc}\",\"{}\"]", levels[at][1]);
        }
        7 if n > 0 => parts.insert(at, parts[at].clone()),
        8 if n > 1 => parts.swap(at, (at + 1) % n),
        9 if n > 0 => parts.truncate(1 + at),
        10 if n > 0 => {
            let want = if next().is_multiple_of(8) { 5_001 } else { 30 };
            while parts.len() < want {
                parts.push(parts[parts.len() % n].clone());
            }
        }
        _ => return format!("[{},]", parts.join(",")),
    }
    format!("[{}]", parts.join(","))
}

/// Seeds for the depth mutants: real depthUpdate frames and REST snapshots split into their pairs, with the
/// snapshot symbol of each frame.
fn depth_seeds() -> Vec<(Split, Option<SymbolName>)> {
    let mut seeds = Vec::new();
    let mut per_source = [0usize; 4];
    for (k, f) in [
        "data/sample/btcusdt_20230404.dat.gz",
        "tests/data/BINANCE_FUTURES.ws.1.0.txt",
        "tests/data/BINANCE_FUTURES.http.0.0.txt",
        "data/sample/btcusdt_20230405.dat.gz",
    ]
    .iter()
    .enumerate()
    {
        let text = read_text(Path::new(f));
        for line in text.split(|&c| c == b'\n') {
            let Line::Frame { json, url_symbol, .. } = classify(line) else {
                continue;
            };
            let open = if json.starts_with(b"{\"lastUpdateId\"") {
                Some(0)
            } else if json.windows(13).any(|w| w == b"\"depthUpdate\"") {
                json.windows(5).position(|w| w == b"{\"e\":")
            } else {
                None
            };
            // At most 40 depth updates and every snapshot of each recording.
            if let Some(open) = open
                && (open == 0 || per_source[k] < 40)
                && let Some(split) = object_pairs(json, open)
            {
                per_source[k] += usize::from(open != 0);
                seeds.push((split, url_symbol.or(SymbolName::new(b"BTCUSDT"))));
            }
        }
    }
    assert!(per_source[..2].iter().all(|&n| n == 40), "{per_source:?}");
    seeds
}

/// Structured mutants of real depthUpdate frames and REST snapshots, aimed at the depth shape scanner and its
/// single-pass level reader: pairs reordered, removed, duplicated, unknown keys (with nested junk) added,
/// whitespace, escapes, odd integers, a partial-depth stream name, and the level arrays mutated
/// ([`mutate_levels`]). Each must give the same result and events on the shape scanners, the general scanner and
/// simd-json; both acceptance and refusal must occur, and the shape scanners must have taken some mutants.
#[test]
fn depth_shape_scanner_matches_simd_json_on_structured_mutants() {
    let seeds = depth_seeds();
    let n_snap = seeds.iter().filter(|(s, _)| s.head == b"{").count();
    assert!(n_snap >= 3 && seeds.len() >= 80 + n_snap, "{} seeds, {n_snap} snapshots", seeds.len());
    let mut ps = three_parsers();
    let mut outs: [Vec<MarketEvent>; 3] = std::array::from_fn(|_| Vec::with_capacity(MAX_EVENTS_PER_FRAME));
    // The real frames first: every symbol gets its scales, so the shape scanners can take the mutants.
    for (Split { head, body, tail }, sym) in &seeds {
        let meta = FrameMeta { snapshot_symbol: *sym, ..FrameMeta::default() };
        same_on_all(&mut ps, &mut outs, &[&head[..], &body.join(&b","[..]), &tail[..]].concat(), &meta);
    }
    let shaped_real = ps[0].shape_frames();
    assert!(shaped_real + 10 >= seeds.len() as u64, "{shaped_real} of {} real seeds", seeds.len());
    let mut x: u64 = 0xD1B5_4A32_D192_ED03;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let huge: [&[u8]; 8] =
        [b"123456789012345678", b"1234567890123456789", b"999999999999999999999", b"-1", b"-0", b"007", b"1.0", b"1e3"];
    let extra: [&[u8]; 6] = [
        b"\"z\":1",
        b"\"x\":\"y\"",
        b"\"M\":[1,[2,{}]]",
        b"\"o\":{\"k\":[\"1\"]}",
        b"\"e\":\"depthUpdate\"",
        b"\"b\":[]",
    ];
    let (mut accepted, mut rounds, mut fresh) = (0u64, 0u64, 0u32);
    for round in 0..12_000usize {
        let (Split { head, body, tail }, sym) = &seeds[round % seeds.len()];
        // Snapshots are ≈ 45 KB: one round in four on them is plenty.
        if head == b"{" && round % 4 != 0 {
            continue;
        }
        let (mut head, mut body) = (head.clone(), body.clone());
        let n = body.len();
        let at = (next() as usize) % n;
        match next() % 10 {
            0 => body.swap(at, (at + 1 + (next() as usize) % (n - 1)) % n),
            1 => {
                body.remove(at);
            }
            2 => {
                let dup = body[(next() as usize) % n].clone();
                body.insert(at, dup);
            }
            3 => body.insert(at, extra[(next() as usize) % extra.len()].to_vec()),
            4 => body[at] = [&b" "[..], &body[at], b"\n"].concat(),
            5 => {
                // An escape in a string value (not a level array): the same byte as \u00XX, or an escaped quote.
                let pair = &body[at];
                if let Some(q) = pair.iter().rposition(|&c| c == b'"')
                    && q >= 6
                    && pair[q - 1] != b'"'
                    && !pair.contains(&b'[')
                {
                    let c = pair[q - 1];
                    let esc = if next() % 2 == 0 { format!("\\u{:04X}", c).into_bytes() } else { b"\\\"".to_vec() };
                    body[at] = [&pair[..q - 1], &esc[..], &pair[q..]].concat();
                }
            }
            6 => {
                let pair = &body[at];
                if let Some(colon) = pair.iter().position(|&c| c == b':')
                    && pair[colon + 1..].trim_ascii_start().first().is_some_and(u8::is_ascii_digit)
                {
                    body[at] = [&pair[..=colon], huge[(next() as usize) % huge.len()]].concat();
                }
            }
            7 => {
                // A partial-depth stream (the PARTIAL flag), or whitespace inside the wrapper.
                let h = String::from_utf8_lossy(&head).into_owned();
                let h = if next() % 2 == 0 {
                    h.replace("@depth@", "@depth20@")
                } else {
                    h.replace(",\"data\":", ", \"data\" :")
                };
                head = h.into_bytes();
            }
            _ => {
                // A level array mutated.
                let sides: Vec<usize> = (0..n).filter(|&i| levels_of(&body[i]).is_some()).collect();
                if let Some(&i) = sides.get((next() as usize) % sides.len().max(1))
                    && let Some((key, levels)) = levels_of(&body[i])
                {
                    body[i] = [&key[..], b":", mutate_levels(&levels, &mut next).as_bytes()].concat();
                }
            }
        }
        // One mutant in eight also gets a symbol no parser has seen (the table fills up after 243 of them, which
        // is one more error every path must report alike).
        if next().is_multiple_of(8)
            && let Some(i) = body.iter().position(|p| p.starts_with(b"\"s\":"))
        {
            fresh += 1;
            body[i] = format!("\"s\":\"X{fresh}USDT\"").into_bytes();
        }
        let mutant = [&head[..], &body.join(&b","[..]), &tail[..]].concat();
        let meta = FrameMeta { snapshot_symbol: *sym, ..FrameMeta::default() };
        same_on_all(&mut ps, &mut outs, &mutant, &meta);
        rounds += 1;
        accepted += u64::from(outs[2].iter().any(|e| matches!(e.kind, EventKind::Depth | EventKind::Snapshot)));
    }
    let shaped = ps[0].shape_frames() - shaped_real;
    eprintln!("depth mutants: {rounds} rounds, {accepted} accepted, {shaped} taken by the shape scanners");
    assert!(accepted > rounds / 5 && accepted < rounds * 9 / 10, "{accepted} of {rounds}");
    assert!(shaped > rounds / 10 && shaped < accepted, "{shaped} of {accepted}");
    assert!(ps[0].stats.malformed_total() > 0 && ps[0].stats.malformed[ParseError::TooManyLevels.index()] > 0);
    assert!(fresh > 300 && ps[0].stats.malformed[ParseError::Symbol(InternError::Full(256)).index()] > 0, "{fresh}");
}
