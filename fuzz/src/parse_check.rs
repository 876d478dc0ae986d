//! Invariants of `rusto::ingest::Parser::parse_frame`, shared by the `parse_frame` fuzz target and by
//! `tests/fuzz_regressions.rs` (which includes this file with `#[path]`, so it must build in both crates).
//!
//! Checked on every call (each frame is parsed with the fast path on and off, and the two must agree exactly):
//! - no panic;
//! - the events already in `out` are left untouched, and one frame adds at most `MAX_EVENTS_PER_FRAME` events;
//! - the frame counter goes up by one, and the malformed counter by one exactly when the result is `Err`;
//! - `SymbolDef` events come only first, and each one names an interned symbol by its table name;
//! - on `Err` nothing but `SymbolDef` events is left behind (see [`STRICT_ERR_ENV`] for the stricter contract);
//! - on `Ok` the frame kind matches what was appended: one message for `Market`/`Snapshot`, nothing else;
//! - a `Depth`/`Snapshot` header announces at most `MAX_LEVELS_PER_SIDE` levels per side and is followed by exactly
//!   `ceil(bids/2) + ceil(asks/2)` `Levels` events of its symbol: bids first, then asks (`ASK` flag), two levels each
//!   (`TWO_LEVELS`) except the last one of a side with an odd count, `SNAPSHOT` flag exactly for a snapshot's
//!   levels, prices and quantities non-negative, the unused slot zero.

use rusto::ingest::{FrameKind, FrameMeta, MAX_EVENTS_PER_FRAME, MAX_LEVELS_PER_SIDE, ParseError, Parser};
use rusto::types::{EventKind, MarketEvent, depth_event_count, flags};
use rusto::types::{SymbolName, SymbolTable};

/// Set this environment variable (to anything) to also require what the module doc of `src/parse.rs` promises:
/// "on error `out` is restored to its length on entry". The parser deliberately keeps the `SymbolDef` events of a
/// symbol that a failed frame interned (`Parser::parse_frame`, error branch), so by default they are allowed.
pub const STRICT_ERR_ENV: &str = "RUSTO_FUZZ_STRICT_ERR";

fn strict_err() -> bool {
    static STRICT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *STRICT.get_or_init(|| std::env::var_os(STRICT_ERR_ENV).is_some())
}

/// Parses `frame` twice with one new parser (`SymbolTable::new(64, vec![])`, 1 MiB frame limit, snapshot symbol
/// `BTCUSDT`; see [`take_parser`]) and checks every invariant after each call; panics on the first broken one.
/// The second call sees the symbol and the scales the first one interned or inferred, and appends behind the first
/// call's events, so the "events already in `out` survive" rule is exercised with a non-empty `out`.
///
/// All of that is done three times: with the shape scanners and the general fast scanner (the default), with the
/// general fast scanner alone (`Parser::set_shape_scanners(false)`), and with the fast path off (`Parser::set_fast_path`):
/// the fast path must give exactly what simd-json gives (`src/fastpath.rs`: it either declines a frame or yields
/// the same result), so the two results and event lists must be identical.
pub fn check_frame(frame: &[u8]) {
    let slow = parse_twice(frame, Path::Simd);
    // The shape scanners (the default) and the general fast scanner alone must each give what simd-json gives.
    for (path, name) in [(Path::Shapes, "fast path (shape scanners)"), (Path::General, "fast path (general scanner)")] {
        let (fast, fast_out) = parse_twice(frame, path);
        assert_eq!(fast, slow.0, "{name} and simd-json give different results");
        if fast_out != slow.1 {
            let i = fast_out.iter().zip(&slow.1).position(|(a, b)| a != b).unwrap_or(fast_out.len().min(slow.1.len()));
            panic!(
                "{name} and simd-json give different events ({} vs {}), first at #{i}:\n{:?}\n{:?}",
                fast_out.len(),
                slow.1.len(),
                fast_out.get(i),
                slow.1.get(i)
            );
        }
    }
}

/// Which path of the parser a check runs.
#[derive(Clone, Copy)]
enum Path {
    /// Fast path with the shape scanners first (the default).
    Shapes,
    /// Fast path with the general scanner only (`Parser::set_shape_scanners(false)`).
    General,
    /// simd-json only (`Parser::set_fast_path(false)`).
    Simd,
}

type Results = [Result<FrameKind, ParseError>; 2];

fn parse_twice(frame: &[u8], path: Path) -> (Results, Vec<MarketEvent>) {
    let mut parser = take_parser(path);
    let meta = FrameMeta { snapshot_symbol: SymbolName::new(b"BTCUSDT"), ..Default::default() };
    let mut out: Vec<MarketEvent> = Vec::with_capacity(MAX_EVENTS_PER_FRAME);
    let first = parse_and_check(&mut parser, frame, &meta, &mut out);
    let second = parse_and_check(&mut parser, frame, &meta, &mut out);
    put_parser(path, parser);
    ([first, second], out)
}

thread_local! {
    // One parser per path, kept between inputs only while it is indistinguishable from a new one.
    static PARSERS: std::cell::RefCell<[Option<Parser>; 3]> = const { std::cell::RefCell::new([None, None, None]) };
}

/// A parser that behaves exactly like `Parser::new(SymbolTable::new(64, vec![]), 1 << 20)`.
///
/// `Parser::new` preallocates for 1 MiB frames (a simd-json tape of ~512 Ki nodes among others), which costs far
/// more than parsing a fuzz input, above all under AddressSanitizer. A parser whose symbol table is still empty
/// (nothing interned, no exchangeInfo specs) differs from a new one only in its counters and its "logged once"
/// flags, which no result depends on, so it is reused; any other parser is dropped and a new one made.
fn take_parser(path: Path) -> Parser {
    let kept = PARSERS.with(|p| p.borrow_mut()[path as usize].take());
    let mut parser = kept
        .filter(|p| p.symbols().is_empty() && p.symbols().specs().is_empty())
        .unwrap_or_else(|| Parser::new(SymbolTable::new(64, vec![]), 1 << 20));
    parser.set_fast_path(!matches!(path, Path::Simd));
    parser.set_shape_scanners(matches!(path, Path::Shapes));
    parser
}

fn put_parser(path: Path, parser: Parser) {
    PARSERS.with(|p| p.borrow_mut()[path as usize] = Some(parser));
}

fn parse_and_check(
    parser: &mut Parser,
    frame: &[u8],
    meta: &FrameMeta,
    out: &mut Vec<MarketEvent>,
) -> Result<FrameKind, ParseError> {
    let before = out.clone();
    let frames = parser.stats.frames;
    let malformed = parser.stats.malformed_total();

    let result = parser.parse_frame(frame, meta, out);

    assert!(out.len() >= before.len(), "events of earlier frames were removed");
    assert!(out[..before.len()] == before[..], "events of earlier frames were changed");
    let added = &out[before.len()..];
    assert!(added.len() <= MAX_EVENTS_PER_FRAME, "{} events from one frame", added.len());
    assert_eq!(parser.stats.frames, frames + 1, "frame not counted");
    assert_eq!(
        parser.stats.malformed_total(),
        malformed + u64::from(result.is_err()),
        "malformed counter out of step with the result {result:?}"
    );

    let defs = added.iter().take_while(|e| e.kind == EventKind::SymbolDef).count();
    for d in &added[..defs] {
        let table = parser.symbols();
        assert!((d.symbol as usize) < table.len(), "SymbolDef for unknown id {}", d.symbol);
        assert_eq!(d.symbol_name(), table.get(d.symbol).name, "SymbolDef name differs from the table");
    }
    let body = &added[defs..];

    match result {
        Err(e) => {
            assert!(body.is_empty(), "Err({e:?}) left {} non-SymbolDef events in `out`", body.len());
            if strict_err() {
                assert!(
                    added.is_empty(),
                    "Err({e:?}) left {} SymbolDef event(s) in `out` (module doc: restored to its length)",
                    added.len()
                );
            }
        }
        Ok(kind) => {
            let messages = check_messages(body, parser.symbols().len());
            match kind {
                FrameKind::Market => {
                    assert_eq!(messages, 1, "Market frame with {messages} messages");
                    assert!(
                        matches!(
                            body[0].kind,
                            EventKind::Trade
                                | EventKind::NonMarketTrade
                                | EventKind::Depth
                                | EventKind::BookTicker
                                | EventKind::MarkPrice
                        ),
                        "Market frame became {:?}",
                        body[0].kind
                    );
                }
                FrameKind::Snapshot => {
                    assert_eq!(messages, 1, "Snapshot frame with {messages} messages");
                    assert_eq!(body[0].kind, EventKind::Snapshot);
                }
                FrameKind::ExchangeInfo | FrameKind::Control | FrameKind::Unknown => {
                    assert!(body.is_empty(), "{kind:?} frame appended {:?}", body[0].kind);
                }
            }
        }
    }
    result
}

/// Walks the non-`SymbolDef` events of one frame; returns the number of messages (a header with its levels counts
/// as one).
fn check_messages(body: &[MarketEvent], symbols: usize) -> usize {
    let mut i = 0;
    let mut messages = 0;
    while i < body.len() {
        let head = &body[i];
        assert!((head.symbol as usize) < symbols, "event for unknown symbol id {}", head.symbol);
        i += 1;
        messages += 1;
        match head.kind {
            EventKind::Trade | EventKind::NonMarketTrade | EventKind::BookTicker | EventKind::MarkPrice => {}
            EventKind::Depth | EventKind::Snapshot => {
                let (nb, na) = head.level_counts();
                let (nb, na) = (nb as usize, na as usize);
                assert!(nb <= MAX_LEVELS_PER_SIDE && na <= MAX_LEVELS_PER_SIDE, "header announces {nb}/{na} levels");
                let n = depth_event_count(nb, na) - 1;
                assert!(body.len() - i >= n, "header announces {n} Levels events, only {} follow", body.len() - i);
                let snapshot = head.kind == EventKind::Snapshot;
                check_side(&body[i..i + nb.div_ceil(2)], head, nb, false, snapshot);
                check_side(&body[i + nb.div_ceil(2)..i + n], head, na, true, snapshot);
                i += n;
            }
            k => panic!("unexpected {k:?} event (a header must come first)"),
        }
    }
    messages
}

fn check_side(evs: &[MarketEvent], head: &MarketEvent, count: usize, ask: bool, snapshot: bool) {
    for (j, e) in evs.iter().enumerate() {
        assert_eq!(e.kind, EventKind::Levels, "{:?} header followed by {:?}", head.kind, e.kind);
        assert_eq!(e.symbol, head.symbol, "Levels of another symbol");
        let two = j + 1 < evs.len() || count.is_multiple_of(2);
        let want = if ask { flags::ASK } else { 0 }
            | if two { flags::TWO_LEVELS } else { 0 }
            | if snapshot { flags::SNAPSHOT } else { 0 };
        assert_eq!(
            e.flags,
            want,
            "Levels #{j} of the {} side: flags {:#x}, want {want:#x}",
            if ask { "ask" } else { "bid" },
            e.flags
        );
        let (levels, n) = e.levels();
        for l in &levels[..n] {
            assert!(l.px >= 0 && l.qty >= 0, "negative level {l:?}");
        }
        if n == 1 {
            assert_eq!((e.p[2], e.p[3]), (0, 0), "unused level slot not zero");
        }
    }
}
