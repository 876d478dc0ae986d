//! Symbol names and the parser-side symbol table.
//!
//! The network thread owns a [`SymbolTable`]: names → [`SymbolId`] and the price/quantity [`Scale`] of each symbol,
//! filled from `exchangeInfo` when it is known, else inferred from the decimals of the first price and quantity
//! seen (with a warning). Every change is announced downstream by a [`crate::types::event::EventKind::SymbolDef`] event,
//! so the compute thread builds its own copy without sharing memory. Capacity is fixed at construction.

use crate::types::decimal::Scale;

/// Index of a symbol in the engine's symbol table (assigned by the parser, announced by a `SymbolDef` event).
pub type SymbolId = u16;

/// Longest symbol name accepted (Binance's longest are delivery contracts such as `BTCUSDT_260327`).
pub(crate) const SYMBOL_NAME_MAX: usize = 16;

/// An upper-case symbol name stored inline, NUL padded.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct SymbolName([u8; SYMBOL_NAME_MAX]);

impl SymbolName {
    /// From raw bytes, upper-cased; `None` when empty, too long or not `[A-Za-z0-9_]`.
    pub fn new(s: &[u8]) -> Option<Self> {
        if s.is_empty() || s.len() > SYMBOL_NAME_MAX {
            return None;
        }
        let mut b = [0u8; SYMBOL_NAME_MAX];
        for (d, &c) in b.iter_mut().zip(s) {
            if !(c.is_ascii_alphanumeric() || c == b'_') {
                return None;
            }
            *d = c.to_ascii_uppercase();
        }
        Some(SymbolName(b))
    }

    /// From a NUL-padded array (as carried by a `SymbolDef` event).
    pub fn from_padded(b: [u8; SYMBOL_NAME_MAX]) -> Self {
        SymbolName(b)
    }

    /// The padded bytes.
    pub fn padded(&self) -> [u8; SYMBOL_NAME_MAX] {
        self.0
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        let n = self.0.iter().position(|&c| c == 0).unwrap_or(SYMBOL_NAME_MAX);
        // Only ASCII alphanumerics and '_' are ever stored.
        std::str::from_utf8(&self.0[..n]).unwrap_or("?")
    }
}

impl std::fmt::Debug for SymbolName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for SymbolName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Exchange facts for one symbol (from `exchangeInfo`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SymbolSpec {
    /// Name.
    pub name: SymbolName,
    /// Tick size.
    pub tick: Scale,
    /// Step (lot) size.
    pub step: Scale,
    /// `pricePrecision`.
    pub price_precision: u8,
    /// `quantityPrecision`.
    pub qty_precision: u8,
}

/// One entry of the table.
#[derive(Clone, Copy, Debug)]
pub struct SymbolEntry {
    /// Name.
    pub name: SymbolName,
    /// Price scale, once known.
    pub price: Option<Scale>,
    /// Quantity scale, once known.
    pub qty: Option<Scale>,
    /// True when the scales came from exchangeInfo, false when inferred.
    pub from_exchange_info: bool,
}

/// Error of [`SymbolTable::intern`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InternError {
    /// The table is full.
    #[error("symbol table full ({0} symbols)")]
    Full(usize),
    /// The name is not a valid symbol.
    #[error("invalid symbol name")]
    Invalid,
}

/// Fixed-capacity symbol table (see the module doc).
pub struct SymbolTable {
    entries: Vec<SymbolEntry>,
    specs: Vec<SymbolSpec>,
    capacity: usize,
}

impl SymbolTable {
    /// A table for at most `capacity` symbols, seeded with exchange specs (which are not yet interned).
    pub fn new(capacity: usize, specs: Vec<SymbolSpec>) -> Self {
        SymbolTable { entries: Vec::with_capacity(capacity), specs, capacity }
    }

    /// Replaces the exchange specs (a fresh exchangeInfo). Interned symbols keep their id; their scales are
    /// updated when the spec gives one. Returns the ids whose scales changed.
    pub fn set_specs(&mut self, specs: Vec<SymbolSpec>) -> Vec<SymbolId> {
        self.specs = specs;
        let mut changed = Vec::new();
        for (i, e) in self.entries.iter_mut().enumerate() {
            if let Some(s) = self.specs.iter().find(|s| s.name == e.name)
                && (e.price != Some(s.tick) || e.qty != Some(s.step))
            {
                e.price = Some(s.tick);
                e.qty = Some(s.step);
                e.from_exchange_info = true;
                changed.push(i as SymbolId);
            }
        }
        changed
    }

    /// Looks a name up without interning it.
    #[inline]
    pub fn find(&self, name: &SymbolName) -> Option<SymbolId> {
        self.entries.iter().position(|e| e.name == *name).map(|i| i as SymbolId)
    }

    /// Returns the id of `name`, interning it if new. The bool is true when the symbol is new.
    #[inline]
    pub fn intern(&mut self, raw: &[u8]) -> Result<(SymbolId, bool), InternError> {
        let name = SymbolName::new(raw).ok_or(InternError::Invalid)?;
        if let Some(id) = self.find(&name) {
            return Ok((id, false));
        }
        if self.entries.len() >= self.capacity {
            return Err(InternError::Full(self.capacity));
        }
        let spec = self.specs.iter().find(|s| s.name == name);
        self.entries.push(SymbolEntry {
            name,
            price: spec.map(|s| s.tick),
            qty: spec.map(|s| s.step),
            from_exchange_info: spec.is_some(),
        });
        Ok(((self.entries.len() - 1) as SymbolId, true))
    }

    /// The entry of `id`.
    #[inline]
    pub fn get(&self, id: SymbolId) -> &SymbolEntry {
        &self.entries[id as usize]
    }

    /// Mutable entry of `id`.
    #[inline]
    pub fn get_mut(&mut self, id: SymbolId) -> &mut SymbolEntry {
        &mut self.entries[id as usize]
    }

    /// Number of interned symbols.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is interned.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The exchange specs.
    pub fn specs(&self) -> &[SymbolSpec] {
        &self.specs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated_and_uppercased() {
        assert_eq!(SymbolName::new(b"btcusdt").unwrap().as_str(), "BTCUSDT");
        assert!(SymbolName::new(b"").is_none());
        assert!(SymbolName::new(b"BTC/USDT").is_none());
        assert!(SymbolName::new(b"ABCDEFGHIJKLMNOPQ").is_none());
        assert_eq!(SymbolName::new(b"BTCUSDT_260327").unwrap().as_str(), "BTCUSDT_260327");
    }

    #[test]
    fn intern_is_bounded_and_stable() {
        let mut t = SymbolTable::new(2, vec![]);
        assert_eq!(t.intern(b"BTCUSDT"), Ok((0, true)));
        assert_eq!(t.intern(b"btcusdt"), Ok((0, false)));
        assert_eq!(t.intern(b"ETHUSDT"), Ok((1, true)));
        assert_eq!(t.intern(b"XRPUSDT"), Err(InternError::Full(2)));
        assert_eq!(t.intern(b"X Y"), Err(InternError::Invalid));
    }
}
