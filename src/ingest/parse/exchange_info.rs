//! The REST `/fapi/v1/exchangeInfo` body → symbol specs (tick and step sizes). The only parse that allocates.

use simd_json::{Node, StaticNode};

use super::fields::{F, Msg, ParseError, Val};
use super::tape::{TapeMsg, skip};
use crate::types::decimal::Scale;
use crate::types::symbols::{SymbolName, SymbolSpec};

fn str_at<'i>(nodes: &[Node<'i>], i: usize, name: &'static str) -> Result<&'i str, ParseError> {
    match nodes[i] {
        Node::String(s) => Ok(s),
        _ => Err(ParseError::WrongType(name)),
    }
}

fn int_at(nodes: &[Node<'_>], i: usize, name: &'static str) -> Result<i64, ParseError> {
    match nodes[i] {
        Node::Static(StaticNode::I64(v)) => Ok(v),
        Node::Static(StaticNode::U64(v)) if v <= i64::MAX as u64 => Ok(v as i64),
        _ => Err(ParseError::WrongType(name)),
    }
}

/// The objects among the `len` elements from `first` on: (index of the object node, its field count).
fn objects<'a>(nodes: &'a [Node<'_>], first: usize, len: usize) -> impl Iterator<Item = (usize, usize)> + 'a {
    let mut i = first;
    (0..len).filter_map(move |_| {
        let at = i;
        i = skip(nodes, i);
        match nodes[at] {
            Node::Object { len, .. } => Some((at, len)),
            _ => None,
        }
    })
}

pub(super) fn specs_from_tape(nodes: &[Node<'_>], si: usize) -> Result<Vec<SymbolSpec>, ParseError> {
    let Node::Array { len, .. } = nodes[si] else {
        return Err(ParseError::WrongType("symbols"));
    };
    let mut specs = Vec::with_capacity(len);
    for (obj, n) in objects(nodes, si + 1, len) {
        if let Some(spec) = spec_of(nodes, obj, n)? {
            specs.push(spec);
        }
    }
    Ok(specs)
}

/// One entry of `symbols` (at `obj`, with `n` fields): a spec when it names the symbol, its tick and its step.
fn spec_of(nodes: &[Node<'_>], obj: usize, n: usize) -> Result<Option<SymbolSpec>, ParseError> {
    let (mut name, mut tick, mut step, mut pp, mut qp) = (None, None, None, 0u8, 0u8);
    let mut k = obj + 1;
    for _ in 0..n {
        let Node::String(key) = nodes[k] else {
            return Err(ParseError::Shape);
        };
        let v = k + 1;
        match key {
            "symbol" => name = SymbolName::new(str_at(nodes, v, "symbol")?.as_bytes()),
            "pricePrecision" => pp = int_at(nodes, v, "pricePrecision")?.clamp(0, 18) as u8,
            "quantityPrecision" => qp = int_at(nodes, v, "quantityPrecision")?.clamp(0, 18) as u8,
            "filters" => (tick, step) = filters(nodes, v, (tick, step)),
            _ => {}
        }
        k = skip(nodes, v);
    }
    Ok(match (name, tick, step) {
        (Some(name), Some(tick), Some(step)) => {
            Some(SymbolSpec { name, tick, step, price_precision: pp, qty_precision: qp })
        }
        _ => None,
    })
}

/// The tick (`PRICE_FILTER`) and step (`LOT_SIZE`) sizes in the `filters` array at `v`, over `found` so far.
fn filters(nodes: &[Node<'_>], v: usize, found: (Option<Scale>, Option<Scale>)) -> (Option<Scale>, Option<Scale>) {
    let (mut tick, mut step) = found;
    let Node::Array { len: nf, .. } = nodes[v] else {
        return found;
    };
    for (fo, fl) in objects(nodes, v + 1, nf) {
        let (mut ty, mut ts, mut ss) = ("", None, None);
        let mut q = fo + 1;
        for _ in 0..fl {
            if let (Node::String(fk), Node::String(fv)) = (nodes[q], nodes[q + 1]) {
                match fk {
                    "filterType" => ty = fv,
                    "tickSize" => ts = Scale::from_size(fv),
                    "stepSize" => ss = Scale::from_size(fv),
                    _ => {}
                }
            }
            q = skip(nodes, q + 1);
        }
        match ty {
            "PRICE_FILTER" => tick = ts,
            "LOT_SIZE" => step = ss,
            _ => {}
        }
    }
    (tick, step)
}

/// Parses a REST `/fapi/v1/exchangeInfo` body into symbol specs (start-up path; allocates).
pub fn parse_exchange_info(body: &[u8]) -> Result<Vec<SymbolSpec>, ParseError> {
    let mut buf = body.to_vec();
    let tape = simd_json::to_tape(&mut buf).map_err(|_| ParseError::Json)?;
    let root = TapeMsg::collect(&tape.0, 0)?;
    match root.val(F::Symbols) {
        Val::Arr(si, _) => specs_from_tape(&tape.0, si as usize),
        Val::Missing => Err(ParseError::MissingField("symbols")),
        _ => Err(ParseError::WrongType("symbols")),
    }
}

/// Real exchangeInfo entries bundled with the binary for the symbols of the bundled and shared recordings (sources
/// in `data/exchange-info/README.md`). Replay looks a symbol up here before inferring its scales.
const BUNDLED_EXCHANGE_INFO: &str = include_str!("../../../data/exchange-info/binance-usdm.json");

/// The specs of the bundled exchangeInfo entries (start-up path; allocates).
pub(crate) fn bundled_specs() -> Result<Vec<SymbolSpec>, ParseError> {
    parse_exchange_info(BUNDLED_EXCHANGE_INFO.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec<'a>(specs: &'a [SymbolSpec], name: &str) -> &'a SymbolSpec {
        specs.iter().find(|s| s.name.as_str() == name).unwrap_or_else(|| panic!("{name} bundled"))
    }

    /// The bundled table holds the symbols of the bundled and shared recordings whose real filters every price of
    /// theirs is on, with Binance's filters: BTCUSDT at tick 0.10 (not the 0.01 the decimals of "28145.10" suggest)
    /// and step 0.001. CTKUSDT, KSMUSDT and YFIUSDT are left out (see data/exchange-info/README.md).
    #[test]
    fn the_bundled_table_holds_the_recordings_symbols_with_their_real_filters() {
        let specs = bundled_specs().unwrap();
        assert_eq!(specs.len(), 10);
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        assert!(!names.contains(&"CTKUSDT") && !names.contains(&"KSMUSDT") && !names.contains(&"YFIUSDT"));
        let btc = spec(&specs, "BTCUSDT");
        assert_eq!((btc.tick, btc.step), (Scale { dec: 2, unit: 10 }, Scale { dec: 3, unit: 1 }));
        assert_eq!((btc.price_precision, btc.qty_precision), (2, 3));
        let xmr = spec(&specs, "XMRUSDT");
        assert_eq!((xmr.tick, xmr.step), (Scale { dec: 2, unit: 1 }, Scale { dec: 3, unit: 1 }));
        let sushi = spec(&specs, "SUSHIUSDT");
        assert_eq!((sushi.tick, sushi.step), (Scale { dec: 4, unit: 10 }, Scale { dec: 0, unit: 1 }));
        let dent = spec(&specs, "DENTUSDT");
        assert_eq!((dent.tick, dent.step), (Scale { dec: 6, unit: 1 }, Scale { dec: 0, unit: 1 }));
    }
}
