//! Human and JSON output: run summaries, the database review and its plots.

pub(crate) mod execution;
pub(crate) mod plot;
pub(crate) mod real;
pub(crate) mod review;
pub(crate) mod summary;
pub(crate) mod sweep;

pub use execution::{CostRow, Execution, FillStats, PositionCosts};
pub use plot::write_all as write_plots;
pub use real::{Compare, RealError, RealVsPaper, load as load_real_vs_paper};
pub use review::{Distances, build as build_review, load as load_trades, text as review_text, variant_comparison};
pub use summary::{ReplayReport, live_json, live_text, market_model, to_json, to_text};
pub use sweep::{CellRow, CellStats, Outcome, SweepSummary, bonferroni_z, cell_stats, cell_trades, summarize};
