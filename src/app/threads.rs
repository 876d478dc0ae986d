//! Thread start-up shared by replay and live: one `pin()`, the run's database opened before any thread, the
//! persistence and compute threads started the same way, and the latency summaries gathered at the end.

use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::app::config::Config;
use crate::compute::engine::Engine;
use crate::compute::thread::{ComputeHooks, ComputeStages, IdleConfig, run_compute};
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

/// The cores the kernel keeps for us: `isolcpus=` (no scheduler load balancing) and `nohz_full=` (no tick) of
/// `/proc/cmdline`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Isolation {
    /// Cores of `isolcpus=`.
    pub isolcpus: Vec<usize>,
    /// Cores of `nohz_full=`.
    pub nohz_full: Vec<usize>,
}

/// Most cores read from one list (a bound on what a malformed command line can make us allocate).
const MAX_LISTED_CORES: usize = 4096;

/// A kernel CPU list (`1,3-5`), skipping `isolcpus` flags (`nohz`, `domain`, `managed_irq`) and the group suffix
/// of `a-b:used/group` (taken as the whole range).
fn cpu_list(v: &str, out: &mut Vec<usize>) {
    for item in v.split(',') {
        let range = item.split(':').next().unwrap_or("");
        let (lo, hi) = match range.split_once('-') {
            Some((a, b)) => (a.parse::<usize>(), b.parse::<usize>()),
            None => (range.parse::<usize>(), range.parse::<usize>()),
        };
        let (Ok(lo), Ok(hi)) = (lo, hi) else { continue };
        for c in lo..=hi.min(lo.saturating_add(MAX_LISTED_CORES)) {
            if out.len() >= MAX_LISTED_CORES {
                return;
            }
            if !out.contains(&c) {
                out.push(c);
            }
        }
    }
}

impl Isolation {
    /// Parses a kernel command line (the text of `/proc/cmdline`).
    pub(crate) fn parse(cmdline: &str) -> Self {
        let mut iso = Isolation::default();
        for word in cmdline.split_whitespace() {
            if let Some(v) = word.strip_prefix("isolcpus=") {
                cpu_list(v, &mut iso.isolcpus);
            } else if let Some(v) = word.strip_prefix("nohz_full=") {
                cpu_list(v, &mut iso.nohz_full);
            }
        }
        iso
    }

    /// This machine's (empty when `/proc/cmdline` cannot be read).
    pub(crate) fn of_this_machine() -> Self {
        std::fs::read_to_string("/proc/cmdline").map(|t| Self::parse(&t)).unwrap_or_default()
    }

    /// How `core` is kept: "isolated" (both), "isolcpus", "nohz_full", or "shared".
    pub(crate) fn describe(&self, core: usize) -> &'static str {
        match (self.isolcpus.contains(&core), self.nohz_full.contains(&core)) {
            (true, true) => "isolated",
            (true, false) => "isolcpus",
            (false, true) => "nohz_full",
            (false, false) => "shared",
        }
    }

    /// The start-up line: the idle mode and where each thread is pinned, with each core's isolation.
    pub(crate) fn startup_line(&self, p: &crate::app::config::PipelineConfig) -> String {
        let core = |c: Option<usize>| c.map_or("unpinned".to_string(), |c| format!("core {c} ({})", self.describe(c)));
        let idle = match p.idle {
            crate::app::config::IdleMode::Park => format!("park after {} spins", p.idle_spins),
            crate::app::config::IdleMode::Adaptive => format!("adaptive within {}% of a core", p.idle_cpu_pct),
            crate::app::config::IdleMode::Spin => "spin".to_string(),
        };
        let mut s = match p.layout {
            crate::app::config::Layout::Split => format!(
                "layout split; idle mode {idle}; compute on {}, net on {}, persist on {}",
                core(p.compute_core),
                core(p.net_core),
                core(p.persist_core)
            ),
            crate::app::config::Layout::Inline => format!(
                "layout inline (the network thread runs the engine); {}; net+compute on {}, persist on {}",
                if p.idle == crate::app::config::IdleMode::Spin {
                    "busy-polling the sockets"
                } else {
                    "blocking in the poll"
                },
                core(p.compute_core),
                core(p.persist_core)
            ),
        };
        if p.idle == crate::app::config::IdleMode::Spin && p.compute_core.is_none_or(|c| self.describe(c) == "shared") {
            s.push_str("; spin on a shared core takes it from every other process (see README, Deployment)");
        }
        s
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

/// The persistence and compute threads of a run (no compute thread in the inline layout: the network thread runs
/// the engine and hands it back itself).
pub(crate) struct Backend {
    persist: JoinHandle<(Persist, Result<(), PersistError>)>,
    compute: Option<JoinHandle<(Engine, ComputeStages)>>,
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
        let idle = IdleConfig { mode: p.idle, spins: p.idle_spins, cpu_pct: p.idle_cpu_pct };
        let compute = spawn_pinned("compute", p.compute_core, move || {
            run_compute(engine, events, records_tx, idle, overflow, hooks, waiter)
        })?;
        Ok(Backend { persist, compute: Some(compute) })
    }

    /// Starts persistence alone (the inline layout: the engine runs on the network thread).
    pub(crate) fn start_persist(
        cfg: &Config,
        persist: Persist,
        records_rx: Consumer<Record>,
    ) -> Result<Self, PipelineError> {
        let persist = spawn_pinned("persist", cfg.pipeline.persist_core, move || persist.run(records_rx))?;
        Ok(Backend { persist, compute: None })
    }

    /// Joins compute (or takes the engine the inline network thread handed back), then persistence (which drains
    /// what compute wrote).
    pub(crate) fn join(self, inline: Option<(Engine, ComputeStages)>) -> Result<BackendEnd, PipelineError> {
        let (engine, stages) = match (self.compute, inline) {
            (Some(h), _) => join(h, "compute")?,
            (None, Some(end)) => end,
            (None, None) => {
                return Err(PipelineError::Thread("compute", "the inline engine was not handed back".into()));
            }
        };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::config::{IdleMode, PipelineConfig};

    #[test]
    fn isolated_cores_are_read_from_the_kernel_command_line() {
        let iso =
            Isolation::parse("BOOT_IMAGE=/vmlinuz root=/dev/sda1 isolcpus=nohz,domain,2-3,6 nohz_full=3,6-7 quiet");
        assert_eq!(iso.isolcpus, vec![2, 3, 6]);
        assert_eq!(iso.nohz_full, vec![3, 6, 7]);
        assert_eq!(
            (iso.describe(3), iso.describe(2), iso.describe(7), iso.describe(0)),
            ("isolated", "isolcpus", "nohz_full", "shared")
        );
        assert_eq!(Isolation::parse("ro quiet splash"), Isolation::default());
        assert_eq!(Isolation::parse("isolcpus=managed_irq,1 isolcpus=1-2:1/2").isolcpus, vec![1, 2]);
        assert_eq!(Isolation::parse("isolcpus=x-y,,5").isolcpus, vec![5]);
        assert_eq!(Isolation::parse("isolcpus=18446744073709551615").isolcpus, vec![usize::MAX], "no overflow");
        let huge = Isolation::parse("isolcpus=0-99999999");
        assert!(huge.isolcpus.len() <= MAX_LISTED_CORES);
    }

    #[test]
    fn the_startup_line_names_the_mode_and_the_cores() {
        let iso = Isolation::parse("isolcpus=1 nohz_full=1");
        let mut p = PipelineConfig::default();
        let l = iso.startup_line(&p);
        assert!(l.contains("layout inline") && l.contains("blocking in the poll"), "{l}");
        assert!(l.contains("net+compute on core 1 (isolated)") && l.contains("persist on core 0 (shared)"), "{l}");
        p.idle = IdleMode::Spin;
        assert!(iso.startup_line(&p).contains("busy-polling the sockets"));
        assert!(!iso.startup_line(&p).contains("README"), "spin on an isolated core needs no warning");
        p.idle = IdleMode::Park;
        p.layout = crate::app::config::Layout::Split;
        let l = iso.startup_line(&p);
        assert!(l.contains("park after 2000 spins") && l.contains("compute on core 1 (isolated)"), "{l}");
        assert!(l.contains("net on core 0 (shared)"), "{l}");
        p.idle = IdleMode::Spin;
        assert!(!iso.startup_line(&p).contains("README"), "spin on an isolated core needs no warning");
        p.compute_core = None;
        let l = iso.startup_line(&p);
        assert!(l.contains("compute on unpinned") && l.contains("README"), "{l}");
        p.idle = IdleMode::Adaptive;
        assert!(iso.startup_line(&p).contains("adaptive within 20% of a core"));
    }
}
