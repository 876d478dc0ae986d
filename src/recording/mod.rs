//! Recorded feeds: the line reader, and the import of Binance historical CSVs.

pub mod import;
pub mod reader;
pub mod source;
