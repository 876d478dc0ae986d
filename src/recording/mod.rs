//! Recorded feeds: the line reader, and the import of Binance historical CSVs.

pub(crate) mod cache;
pub(crate) mod import;
pub(crate) mod reader;
pub(crate) mod source;
pub(crate) mod window;

pub use cache::{CacheError, EventCache};
pub use import::import_files;
pub use reader::{FeedError, Line, LineReader, Rejected, classify, symbol_from_file_name};
pub use source::{Speed, run_cache};
pub use window::{LocalTime, TimeWindow};
