//! Thread start-up shared by replay and live: one `pin()`, the run's database opened before any thread, the
//! persistence and compute threads started the same way, and the latency summaries gathered at the end.

use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::app::config::Config;
use crate::compute::engine::Engine;
use crate::compute::thread::{ComputeHooks, ComputeStages, run_compute};
use crate::handoff::publish::Waiter;
use crate::handoff::ring::{Consumer, Producer};
use crate::persist::db::{Db, DbError};
use crate::persist::writer::{Persist, PersistError};
use crate::types::event::MarketEvent;
use crate::types::latency::Summary;
use crate::types::record::Record;

/// Errors of the pipeline's start-up and end, shared by replay and live.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The database could not be opened or prepared.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Persistence failed.
    #[error(transparent)]
    Persist(#[from] PersistError),
    /// A pipeline thread could not be started or died.
    #[error("pipeline thread {0}: {1}")]
    Thread(&'static str, String),
}

/// Pins the calling thread to `core` (when given and the machine has more than one core); a failure is a warning.
pub(crate) fn pin(core: Option<usize>, what: &str) {
    let Some(want) = core else { return };
    let ids = core_affinity::get_core_ids().unwrap_or_default();
    if ids.len() < 2 {
        return; // One core: pinning buys nothing.
    }
    match ids.iter().find(|c| c.id == want) {
        Some(&c) => {
            if !core_affinity::set_for_current(c) {
                log::warn!("could not pin the {what} thread to core {want}");
            }
        }
        None => log::warn!("{what} thread: core {want} does not exist here ({} cores); not pinned", ids.len()),
    }
}

/// Starts `rusto-<what>`, pinned to `core`.
pub(crate) fn spawn_pinned<T: Send + 'static>(
    what: &'static str,
    core: Option<usize>,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<JoinHandle<T>, PipelineError> {
    std::thread::Builder::new()
        .name(format!("rusto-{what}"))
        .spawn(move || {
            pin(core, what);
            f()
        })
        .map_err(|e| PipelineError::Thread(what, e.to_string()))
}

/// Joins a pipeline thread (a panic is an error naming it).
pub(crate) fn join<T>(h: JoinHandle<T>, what: &'static str) -> Result<T, PipelineError> {
    h.join().map_err(|_| PipelineError::Thread(what, "panicked".into()))
}

/// Opens the run's database before any thread starts (a locked, read-only or corrupt database is an error before
/// any trading): variants registered, the hour expectancy loaded into `engine`, the run begun.
pub(crate) fn open_db(
    cfg: &Config,
    engine: &mut Engine,
    path: Option<&Path>,
    mode: &str,
    input: &str,
) -> Result<Option<Db>, PipelineError> {
    let Some(path) = path else { return Ok(None) };
    let mut db = Db::open(path)?;
    db.set_variants(&cfg.variant_names());
    engine.preload_hour_expectancy(db.load_hour_expectancy(cfg.gate.lookback_trades)?);
    db.begin_run(env!("CARGO_PKG_VERSION"), &cfg.hash(), mode, input)?;
    Ok(Some(db))
}

/// One named latency summary.
pub(crate) type Latency = (&'static str, Summary);

/// The persistence and compute threads of a run.
pub(crate) struct Backend {
    persist: JoinHandle<(Persist, Result<(), PersistError>)>,
    compute: JoinHandle<(Engine, ComputeStages)>,
}

/// What the persistence and compute threads hand back.
pub(crate) struct BackendEnd {
    /// The engine (its counters and state).
    pub engine: Engine,
    /// Compute stage histograms.
    pub stages: ComputeStages,
    /// The persistence stage.
    pub persist: Persist,
    /// How persistence ended.
    pub persist_result: Result<(), PersistError>,
}

/// The rings a backend consumes and produces.
pub(crate) struct BackendRings {
    /// Events from the network (or recording) thread.
    pub events: Consumer<MarketEvent>,
    /// Records to persistence: the compute side.
    pub records_tx: Producer<Record>,
    /// Records to persistence: the persistence side.
    pub records_rx: Consumer<Record>,
}

impl Backend {
    /// Starts persistence, then compute, each on its configured core.
    pub(crate) fn start(
        cfg: &Config,
        persist: Persist,
        engine: Engine,
        rings: BackendRings,
        hooks: ComputeHooks,
        waiter: Arc<Waiter>,
    ) -> Result<Self, PipelineError> {
        let p = cfg.pipeline.clone();
        let BackendRings { events, records_tx, records_rx } = rings;
        let persist = spawn_pinned("persist", p.persist_core, move || persist.run(records_rx))?;
        let overflow = p.record_ring;
        let compute = spawn_pinned("compute", p.compute_core, move || {
            run_compute(engine, events, records_tx, p.idle_spins, overflow, hooks, waiter)
        })?;
        Ok(Backend { persist, compute })
    }

    /// Joins compute, then persistence (which drains what compute wrote).
    pub(crate) fn join(self) -> Result<BackendEnd, PipelineError> {
        let (engine, stages) = join(self.compute, "compute")?;
        let (persist, persist_result) = join(self.persist, "persist")?;
        Ok(BackendEnd { engine, stages, persist, persist_result })
    }
}

impl BackendEnd {
    /// Latency summaries: parse, the compute stages in print order, persist_commit; `tick_to_decision` is
    /// returned apart (replay prints it last, live keeps it with the compute stages).
    pub(crate) fn latency(
        &self,
        parse: &crate::types::latency::Stage,
    ) -> (Vec<(&'static str, Summary)>, Option<Latency>) {
        let mut latency = vec![("parse", Summary::of(&parse.hist))];
        let mut compute = self.stages.summaries(&self.engine);
        let tick_to_decision = compute.pop();
        latency.extend(compute);
        latency.push(("persist_commit", Summary::of(&self.persist.commit_stage.hist)));
        (latency, tick_to_decision)
    }
}
