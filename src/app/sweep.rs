//! `rusto sweep`: a grid (and/or random sample) over configuration keys, each cell an independent replay in its own
//! process (`rusto --config DIR/cell-XXX.toml replay --db DIR/cell-XXX.db --json …`), at most `--jobs` at a time,
//! then the summary of the cells' databases (`report::sweep`). With `--emit-jobs` the same commands are written for
//! an existing scheduler (GNU parallel, Slurm) instead, and `rusto sweep merge DIR` builds the same summary.
//!
//! The grid file:
//!
//! ```toml
//! [grid]                          # every combination (keys in name order, the last one varying fastest)
//! "bars.range_ticks" = [6, 8, 10]
//! "risk.stop_pct" = [0.02, 0.05]
//! [random]                        # optional: `samples` draws of the ranges, crossed with the grid
//! samples = 8
//! seed = 1
//! [random.ranges]                 # integers: uniform in [lo, hi]; floats: uniform in [lo, hi), 6 decimals
//! "position.tp1_rr" = [0.5, 2.0]
//! ```
//!
//! Every key must be a key of the configuration (`rusto config default`), and every cell's configuration (the base
//! `--config` file with the cell's keys set) must validate: both are checked before anything runs.
//!
//! DIR holds, per cell, its configuration (`cell-XXX.toml`, so the cell is reproducible alone), database, the
//! replay's JSON summary and its stderr (`cell-XXX[.train|.test].{db,json,log}`), and `sweep.json`, the manifest
//! `merge` reads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::app::config::{Config, ConfigError};
use crate::recording::window::TimeWindow;
use crate::report::review::ReviewError;
use crate::report::sweep::{CellRow, Outcome, SweepSummary, bonferroni_z, cell_stats, cell_trades, summarize};

/// Most cells of one sweep.
pub(crate) const MAX_CELLS: usize = 10_000;
/// Most keys a grid (and its random ranges) may set.
const MAX_KEYS: usize = 64;

/// Errors of a sweep.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The grid file is not what a sweep needs.
    #[error("grid {path}: {msg}")]
    Grid {
        /// File.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// A grid key that is not a configuration key.
    #[error("grid key `{key}` is not a configuration key (see `rusto config default`){hint}")]
    UnknownKey {
        /// The key.
        key: String,
        /// Keys of the same section, when the section exists.
        hint: String,
    },
    /// A cell's configuration does not validate.
    #[error("{cell} ({overrides}): {inner}")]
    Cell {
        /// Cell name.
        cell: String,
        /// Its overrides.
        overrides: String,
        /// The configuration error.
        inner: Box<ConfigError>,
    },
    /// A file of the sweep could not be read or written.
    #[error("{path}: {cause}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        cause: std::io::Error,
    },
    /// The output folder already holds a sweep.
    #[error("{0} already holds a sweep (sweep.json): choose another --dir or remove it")]
    DirInUse(PathBuf),
    /// The manifest of a sweep folder is missing or invalid.
    #[error("{path}: not a sweep manifest: {msg}")]
    Manifest {
        /// File.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// Bad options.
    #[error("{0}")]
    Options(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SweepError + '_ {
    move |cause| SweepError::Io { path: path.to_owned(), cause }
}

/// Options of `rusto sweep`.
#[derive(Debug, Clone, Default)]
pub struct SweepOptions {
    /// The grid file.
    pub grid: PathBuf,
    /// The base configuration file (`--config`), if any.
    pub base_config: Option<PathBuf>,
    /// Recordings replayed by every cell.
    pub files: Vec<PathBuf>,
    /// Output folder.
    pub dir: PathBuf,
    /// Most replays at a time.
    pub jobs: usize,
    /// The replay event cache folder, passed to every cell.
    pub cache: Option<PathBuf>,
    /// An exchangeInfo file, passed to every cell.
    pub exchange_info: Option<PathBuf>,
    /// Walk-forward: the train and test windows.
    pub walk_forward: Option<(TimeWindow, TimeWindow)>,
    /// The rusto binary the commands run (default: this one).
    pub bin: Option<PathBuf>,
}

/// One window a cell is replayed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Phase {
    /// `all`, `train` or `test`.
    pub name: PhaseName,
    /// `--from`, ns.
    pub from_ns: Option<i64>,
    /// `--until`, ns.
    pub until_ns: Option<i64>,
}

/// The name of a [`Phase`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PhaseName {
    /// The whole recording.
    All,
    /// The train window of a walk-forward.
    Train,
    /// The test window of a walk-forward.
    Test,
}

impl Phase {
    /// The file suffix of this phase's outputs.
    fn suffix(&self) -> &'static str {
        match self.name {
            PhaseName::All => "",
            PhaseName::Train => ".train",
            PhaseName::Test => ".test",
        }
    }
}

/// A cell of the manifest.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ManifestCell {
    /// `cell-000`, …
    pub name: String,
    /// Its keys and values (TOML text), in grid order.
    pub overrides: Vec<(String, String)>,
}

/// `DIR/sweep.json`: what `merge` needs to build the summary from the folder alone.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    /// Format version.
    pub version: u32,
    /// The cells.
    pub cells: Vec<ManifestCell>,
    /// The windows each cell is replayed on (one, or train and test).
    pub phases: Vec<Phase>,
    /// The recordings (absolute paths).
    pub recordings: Vec<PathBuf>,
}

const MANIFEST_VERSION: u32 = 1;

/// The grid file as parsed.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct GridFile {
    #[serde(default)]
    grid: BTreeMap<String, Vec<toml::Value>>,
    random: Option<RandomSpec>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RandomSpec {
    samples: usize,
    seed: u64,
    ranges: BTreeMap<String, [toml::Value; 2]>,
}

/// SplitMix64: a small deterministic generator (the same seed gives the same cells everywhere).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One draw of a `[random.ranges]` entry.
fn draw(key: &str, [lo, hi]: &[toml::Value; 2], rng: &mut SplitMix, path: &Path) -> Result<toml::Value, SweepError> {
    let bad = |msg: String| SweepError::Grid { path: path.to_owned(), msg: format!("random range `{key}`: {msg}") };
    match (lo, hi) {
        (toml::Value::Integer(a), toml::Value::Integer(b)) if a <= b => {
            let span = (*b as i128 - *a as i128 + 1) as u128;
            Ok(toml::Value::Integer((*a as i128 + (rng.next() as u128 % span) as i128) as i64))
        }
        _ => {
            let f = |v: &toml::Value| v.as_float().or_else(|| v.as_integer().map(|i| i as f64));
            match (f(lo), f(hi)) {
                (Some(a), Some(b)) if a <= b && a.is_finite() && b.is_finite() => {
                    let x = a + (b - a) * rng.unit();
                    Ok(toml::Value::Float((x * 1e6).round() / 1e6))
                }
                _ => Err(bad("give [lo, hi] numbers with lo <= hi".into())),
            }
        }
    }
}

/// The cells' overrides: the grid's combinations, each crossed with the random draws.
fn combinations(g: &GridFile, path: &Path) -> Result<Vec<Vec<(String, toml::Value)>>, SweepError> {
    let bad = |msg: String| SweepError::Grid { path: path.to_owned(), msg };
    let keys = g.grid.len() + g.random.as_ref().map_or(0, |r| r.ranges.len());
    if keys == 0 {
        return Err(bad("no [grid] key and no [random.ranges]: nothing to sweep".into()));
    }
    if keys > MAX_KEYS {
        return Err(bad(format!("{keys} keys; at most {MAX_KEYS}")));
    }
    let mut total: usize = 1;
    for (k, vals) in &g.grid {
        if vals.is_empty() {
            return Err(bad(format!("`{k}` has no values")));
        }
        total = total.saturating_mul(vals.len());
    }
    let samples = g.random.as_ref().map_or(1, |r| r.samples);
    if let Some(r) = &g.random
        && (r.samples == 0 || r.ranges.is_empty())
    {
        return Err(bad("[random] needs samples >= 1 and at least one [random.ranges] entry".into()));
    }
    if g.random.as_ref().is_some_and(|r| r.ranges.keys().any(|k| g.grid.contains_key(k))) {
        return Err(bad("a key is both in [grid] and in [random.ranges]".into()));
    }
    total = total.saturating_mul(samples);
    if total > MAX_CELLS {
        return Err(bad(format!("{total} cells; at most {MAX_CELLS}")));
    }
    let mut rng = SplitMix(g.random.as_ref().map_or(0, |r| r.seed));
    let mut out = Vec::with_capacity(total);
    for i in 0..total / samples {
        let mut rest = i;
        let mut cell: Vec<(String, toml::Value)> = Vec::with_capacity(keys);
        for (k, vals) in g.grid.iter().rev() {
            cell.push((k.clone(), vals[rest % vals.len()].clone()));
            rest /= vals.len();
        }
        cell.reverse();
        for _ in 0..samples {
            let mut c = cell.clone();
            if let Some(r) = &g.random {
                for (k, range) in &r.ranges {
                    c.push((k.clone(), draw(k, range, &mut rng, path)?));
                }
            }
            out.push(c);
        }
    }
    Ok(out)
}

/// Refuses a key that names no key (or table) of the configuration.
fn check_key(key: &str, known: &[String]) -> Result<(), SweepError> {
    let table = format!("{key}.");
    if known.iter().any(|k| k == key || k.starts_with(&table)) {
        return Ok(());
    }
    let section = key.split('.').next().unwrap_or("");
    if matches!(section, "metrics" | "variants") {
        let hint = format!("; [{section}] is not sweepable (a replay does not use it)");
        return Err(SweepError::UnknownKey { key: key.into(), hint });
    }
    let same: Vec<&str> = known.iter().filter(|k| k.split('.').next() == Some(section)).map(String::as_str).collect();
    let hint = if same.is_empty() {
        format!("; no section [{section}]")
    } else {
        format!("; [{section}] has: {}", same.join(", "))
    };
    Err(SweepError::UnknownKey { key: key.into(), hint })
}

/// Every dotted key of the configuration (from its canonical lines; `[[variants]]` is not sweepable).
fn config_keys() -> Vec<String> {
    Config::default()
        .canonical()
        .lines()
        .filter_map(|l| l.split('=').next())
        .filter(|k| !k.starts_with("variants"))
        .map(str::to_string)
        .collect()
}

/// Sets `a.b.c = v` in `t`, creating the tables on the way; a table created starts as the same table of `defaults`
/// (so `strategy.base.min_imbalance` alone keeps the other keys of the default `strategy.base`).
fn set_dotted(t: &mut toml::Table, key: &str, v: toml::Value, defaults: &toml::Table) {
    let (mut cur, mut def) = (t, Some(defaults));
    let mut parts = key.split('.').peekable();
    while let Some(p) = parts.next() {
        if parts.peek().is_none() {
            cur.insert(p.to_string(), v);
            return;
        }
        let d = def.and_then(|d| d.get(p)).and_then(toml::Value::as_table);
        let e = cur.entry(p.to_string()).or_insert_with(|| toml::Value::Table(d.cloned().unwrap_or_default()));
        if !e.is_table() {
            *e = toml::Value::Table(toml::Table::new());
        }
        let toml::Value::Table(next) = e else { return };
        (cur, def) = (next, d);
    }
}

/// The documented defaults (`config/default.toml`), as a table.
fn default_table() -> toml::Table {
    toml::from_str(include_str!("../../config/default.toml")).unwrap_or_default()
}

/// A prepared cell: its name, overrides and whole configuration text.
struct Cell {
    meta: ManifestCell,
    text: String,
}

/// Reads the grid and the base configuration and builds every cell's configuration, each validated.
fn build_cells(opts: &SweepOptions) -> Result<Vec<Cell>, SweepError> {
    let text = std::fs::read_to_string(&opts.grid).map_err(io(&opts.grid))?;
    let grid: GridFile = toml::from_str(&text)
        .map_err(|e| SweepError::Grid { path: opts.grid.clone(), msg: e.message().to_string() })?;
    let known = config_keys();
    for k in grid.grid.keys().chain(grid.random.iter().flat_map(|r| r.ranges.keys())) {
        check_key(k, &known)?;
    }
    let base_text = match &opts.base_config {
        Some(p) => std::fs::read_to_string(p).map_err(io(p))?,
        None => String::new(),
    };
    let base_path = opts.base_config.as_ref().map_or("(defaults)".into(), |p| p.display().to_string());
    // The base itself must validate (its own errors, named as such).
    Config::from_toml(&base_text, &base_path).map_err(|e| SweepError::Cell {
        cell: "base configuration".into(),
        overrides: base_path.clone(),
        inner: Box::new(e),
    })?;
    let base: toml::Table = toml::from_str(&base_text)
        .map_err(|e| SweepError::Grid { path: PathBuf::from(&base_path), msg: e.message().to_string() })?;
    let defaults = default_table();
    let mut cells = Vec::new();
    for (i, over) in combinations(&grid, &opts.grid)?.into_iter().enumerate() {
        let mut t = base.clone();
        for (k, v) in &over {
            set_dotted(&mut t, k, v.clone(), &defaults);
        }
        let name = format!("cell-{i:03}");
        let overrides: Vec<(String, String)> = over.iter().map(|(k, v)| (k.clone(), v.to_string())).collect();
        let shown = overrides.iter().map(|(k, v)| format!("{k} = {v}")).collect::<Vec<_>>().join(", ");
        let body = toml::to_string(&t).map_err(|e| SweepError::Options(format!("{name}: {e}")))?;
        let cell_text = format!("# rusto sweep {name}: {shown}\n# base: {base_path}\n{body}");
        Config::from_toml(&cell_text, &name).map_err(|e| SweepError::Cell {
            cell: name.clone(),
            overrides: shown.clone(),
            inner: Box::new(e),
        })?;
        cells.push(Cell { meta: ManifestCell { name, overrides }, text: cell_text });
    }
    Ok(cells)
}

/// The absolute form of `p` (the commands run from anywhere, on any host sharing the filesystem).
fn absolute(p: &Path) -> Result<PathBuf, SweepError> {
    std::path::absolute(p).map_err(io(p))
}

/// Validates everything, creates DIR and writes the cells' configurations and the manifest.
pub fn prepare(opts: &SweepOptions) -> Result<Manifest, SweepError> {
    if opts.files.is_empty() {
        return Err(SweepError::Options("no recording given".into()));
    }
    for f in &opts.files {
        if !f.is_file() {
            return Err(SweepError::Io {
                path: f.clone(),
                cause: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            });
        }
    }
    let cells = build_cells(opts)?;
    let manifest_path = opts.dir.join("sweep.json");
    if manifest_path.exists() {
        return Err(SweepError::DirInUse(opts.dir.clone()));
    }
    std::fs::create_dir_all(&opts.dir).map_err(io(&opts.dir))?;
    let phases = match opts.walk_forward {
        None => vec![Phase { name: PhaseName::All, from_ns: None, until_ns: None }],
        Some((train, test)) => vec![
            Phase { name: PhaseName::Train, from_ns: train.from_ns, until_ns: train.until_ns },
            Phase { name: PhaseName::Test, from_ns: test.from_ns, until_ns: test.until_ns },
        ],
    };
    let recordings = opts.files.iter().map(|f| absolute(f)).collect::<Result<Vec<_>, _>>()?;
    for c in &cells {
        let p = opts.dir.join(format!("{}.toml", c.meta.name));
        std::fs::write(&p, &c.text).map_err(io(&p))?;
    }
    let manifest =
        Manifest { version: MANIFEST_VERSION, cells: cells.into_iter().map(|c| c.meta).collect(), phases, recordings };
    let json = serde_json::to_string_pretty(&manifest).map_err(|e| SweepError::Options(e.to_string()))?;
    std::fs::write(&manifest_path, json + "\n").map_err(io(&manifest_path))?;
    Ok(manifest)
}

/// One replay of the sweep: a cell on a phase.
#[derive(Debug, Clone, Copy)]
struct Job {
    cell: usize,
    phase: usize,
}

/// The outputs of a job: (database, JSON summary, stderr log).
fn outputs(dir: &Path, cell: &str, phase: &Phase) -> (PathBuf, PathBuf, PathBuf) {
    let stem = format!("{cell}{}", phase.suffix());
    (dir.join(format!("{stem}.db")), dir.join(format!("{stem}.json")), dir.join(format!("{stem}.log")))
}

/// The jobs in run order: cell by cell, train before test; with a cache, a whole-stream job first (it writes the
/// cache the others read).
fn jobs(m: &Manifest, cache: bool) -> Vec<Job> {
    let mut out: Vec<Job> =
        (0..m.cells.len()).flat_map(|cell| (0..m.phases.len()).map(move |phase| Job { cell, phase })).collect();
    if cache && let Some(i) = out.iter().position(|j| m.phases[j.phase].until_ns.is_none()) {
        let first = out.remove(i);
        out.insert(0, first);
    }
    out
}

/// The arguments of a job's replay (after the binary), and its outputs.
fn job_args(m: &Manifest, dir: &Path, opts: &SweepOptions, job: Job) -> (Vec<String>, (PathBuf, PathBuf, PathBuf)) {
    let (cell, phase) = (&m.cells[job.cell], &m.phases[job.phase]);
    let out = outputs(dir, &cell.name, phase);
    let s = |p: &Path| p.display().to_string();
    let mut a = vec!["--config".into(), s(&dir.join(format!("{}.toml", cell.name))), "replay".into(), "--json".into()];
    a.extend(["--db".into(), s(&out.0)]);
    if let Some(c) = &opts.cache {
        a.extend(["--cache".into(), s(c)]);
    }
    if let Some(x) = &opts.exchange_info {
        a.extend(["--exchange-info".into(), s(x)]);
    }
    if let Some(f) = phase.from_ns {
        a.extend(["--from".into(), f.to_string()]);
    }
    if let Some(u) = phase.until_ns {
        a.extend(["--until".into(), u.to_string()]);
    }
    a.push("--".into());
    a.extend(m.recordings.iter().map(|r| s(r)));
    (a, out)
}

/// `opts` with every path absolute (the commands do not depend on the working directory).
fn absolute_opts(opts: &SweepOptions) -> Result<(SweepOptions, PathBuf), SweepError> {
    let mut o = opts.clone();
    o.dir = absolute(&opts.dir)?;
    o.cache = opts.cache.as_deref().map(absolute).transpose()?;
    o.exchange_info = opts.exchange_info.as_deref().map(absolute).transpose()?;
    let bin = match &opts.bin {
        // A bare name is looked up on each host's PATH; a path is made absolute like the others.
        Some(b) if b.components().count() == 1 => b.clone(),
        Some(b) => absolute(b)?,
        None => std::env::current_exe().map_err(io(Path::new("the rusto binary")))?,
    };
    Ok((o, bin))
}

/// Starts one job's child process, its stdout and stderr in its files.
fn spawn(bin: &Path, args: &[String], json: &Path, log: &Path) -> Result<Child, SweepError> {
    let out = std::fs::File::create(json).map_err(io(json))?;
    let err = std::fs::File::create(log).map_err(io(log))?;
    Command::new(bin).args(args).stdin(Stdio::null()).stdout(out).stderr(err).spawn().map_err(io(bin))
}

/// A progress bar on a terminal (`None` elsewhere: one line per finished job instead).
fn progress(n: usize) -> Option<indicatif::ProgressBar> {
    std::io::IsTerminal::is_terminal(&std::io::stderr()).then(|| {
        let b = indicatif::ProgressBar::new(n as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template("{spinner} sweep [{bar:40}] {pos}/{len} replays {elapsed} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    })
}

/// The finished jobs of a local sweep, shown on the progress bar (or one line each off a terminal).
struct Tally<'a> {
    m: &'a Manifest,
    n: usize,
    done: usize,
    failed: usize,
    bar: Option<indicatif::ProgressBar>,
}

impl Tally<'_> {
    fn finish(&mut self, job: Job, ok: bool) {
        self.done += 1;
        self.failed += usize::from(!ok);
        match &self.bar {
            Some(b) => {
                b.inc(1);
                b.set_message(format!("{} failed", self.failed));
            }
            None => eprintln!(
                "sweep: {}/{} {}{} {}",
                self.done,
                self.n,
                self.m.cells[job.cell].name,
                self.m.phases[job.phase].suffix(),
                if ok { "done" } else { "FAILED" }
            ),
        }
    }
}

/// Reaps the children that ended.
fn reap(running: &mut Vec<(Job, Child)>, tally: &mut Tally<'_>) {
    let mut i = 0;
    while i < running.len() {
        match running[i].1.try_wait() {
            Ok(None) => i += 1,
            Ok(Some(status)) => {
                let (job, _) = running.swap_remove(i);
                tally.finish(job, status.success());
            }
            Err(e) => {
                let (job, _) = running.swap_remove(i);
                log::warn!("sweep: waiting for a replay: {e}");
                tally.finish(job, false);
            }
        }
    }
}

/// Runs every job of `m` here, at most `opts.jobs` at a time; returns how many child processes failed.
pub fn run_local(m: &Manifest, opts: &SweepOptions) -> Result<usize, SweepError> {
    let (opts, bin) = absolute_opts(opts)?;
    let order = jobs(m, opts.cache.is_some());
    let limit = opts.jobs.max(1);
    let mut tally = Tally { m, n: order.len(), done: 0, failed: 0, bar: progress(order.len()) };
    let mut pending = order.into_iter();
    let mut running: Vec<(Job, Child)> = Vec::with_capacity(limit);
    loop {
        // With a cache the first job runs alone: it writes the cache the others then read.
        let room = if opts.cache.is_some() && tally.done == 0 { 1 } else { limit };
        while running.len() < room {
            let Some(job) = pending.next() else { break };
            let (args, (_, json, log)) = job_args(m, &opts.dir, &opts, job);
            match spawn(&bin, &args, &json, &log) {
                Ok(child) => running.push((job, child)),
                Err(e) => {
                    // The reason goes where `merge` looks for it.
                    let _ = std::fs::write(&log, format!("error: could not start the replay: {e}\n"));
                    tally.finish(job, false);
                }
            }
        }
        if running.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
        reap(&mut running, &mut tally);
    }
    if let Some(b) = tally.bar.take() {
        b.finish_and_clear();
    }
    Ok(tally.failed)
}

/// `'…'` for a POSIX shell.
fn sh_quote(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b)) {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// What `--emit-jobs` wrote.
#[derive(Debug, Clone)]
pub struct Emitted {
    /// One shell command per line, for GNU parallel.
    pub jobs: PathBuf,
    /// The Slurm job-array script running line `$SLURM_ARRAY_TASK_ID + 1` of `jobs`.
    pub slurm: PathBuf,
    /// Commands written.
    pub n: usize,
}

/// Writes one command per job (`DIR/jobs.txt`) and a Slurm array script (`DIR/slurm.sh`).
pub fn emit_jobs(m: &Manifest, opts: &SweepOptions) -> Result<Emitted, SweepError> {
    let (opts, bin) = absolute_opts(opts)?;
    let mut lines = String::new();
    let order = jobs(m, opts.cache.is_some());
    for &job in &order {
        let (args, (_, json, log)) = job_args(m, &opts.dir, &opts, job);
        let mut line = sh_quote(&bin.display().to_string());
        for a in &args {
            line.push(' ');
            line.push_str(&sh_quote(a));
        }
        let q = |p: &Path| sh_quote(&p.display().to_string());
        line.push_str(&format!(" > {} 2> {}\n", q(&json), q(&log)));
        lines.push_str(&line);
    }
    let jobs_path = opts.dir.join("jobs.txt");
    std::fs::write(&jobs_path, &lines).map_err(io(&jobs_path))?;
    let slurm_path = opts.dir.join("slurm.sh");
    let q = sh_quote(&jobs_path.display().to_string());
    let script = format!(
        "#!/bin/bash\n# rusto sweep: one replay per array task. Submit with: sbatch {}\n#SBATCH --job-name=rusto-sweep\n\
         #SBATCH --array=0-{}\n#SBATCH --ntasks=1\n#SBATCH --cpus-per-task=2\n#SBATCH --output={}/slurm-%A_%a.out\n\
         set -euo pipefail\nline=$(sed -n \"$((SLURM_ARRAY_TASK_ID + 1))p\" {q})\nexec bash -c \"$line\"\n",
        sh_quote(&slurm_path.display().to_string()),
        order.len().saturating_sub(1),
        opts.dir.display(),
    );
    std::fs::write(&slurm_path, script).map_err(io(&slurm_path))?;
    Ok(Emitted { jobs: jobs_path, slurm: slurm_path, n: order.len() })
}

/// Reads `DIR/sweep.json`.
pub(crate) fn read_manifest(dir: &Path) -> Result<Manifest, SweepError> {
    let path = dir.join("sweep.json");
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    let m: Manifest =
        serde_json::from_str(&text).map_err(|e| SweepError::Manifest { path: path.clone(), msg: e.to_string() })?;
    if m.version != MANIFEST_VERSION || m.cells.is_empty() || m.cells.len() > MAX_CELLS || m.phases.is_empty() {
        return Err(SweepError::Manifest { path, msg: format!("version {} with {} cells", m.version, m.cells.len()) });
    }
    Ok(m)
}

/// The last `error:` line of a replay's stderr, if any.
fn log_error(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines().rev().find(|l| l.starts_with("error:")).map(|l| l.trim_start_matches("error:").trim().to_string())
}

/// One job's outcome, from its files.
fn outcome(dir: &Path, cell: &str, phase: &Phase, z: f64) -> Outcome {
    let (db, _, log) = outputs(dir, cell, phase);
    match cell_trades(&db) {
        Ok(trades) => Outcome::Done(cell_stats(&trades, z)),
        Err(e) => Outcome::Failed(log_error(&log).unwrap_or_else(|| match e {
            ReviewError::Db(_, msg) => msg,
            other => other.to_string(),
        })),
    }
}

/// The summary of a sweep folder, from its manifest and the cells' databases (`rusto sweep merge DIR`; a local
/// sweep ends with it too). Writes `DIR/summary.txt` and `DIR/summary.json`.
pub fn merge(dir: &Path) -> Result<SweepSummary, SweepError> {
    let m = read_manifest(dir)?;
    let z = bonferroni_z(m.cells.len());
    let walk_forward = m.phases.len() == 2;
    let rows = m
        .cells
        .iter()
        .map(|c| CellRow {
            name: c.name.clone(),
            overrides: c.overrides.clone(),
            main: outcome(dir, &c.name, &m.phases[0], z),
            test: m.phases.get(1).map(|p| outcome(dir, &c.name, p, z)),
        })
        .collect();
    let s = summarize(rows, walk_forward);
    let txt = dir.join("summary.txt");
    std::fs::write(&txt, s.to_text()).map_err(io(&txt))?;
    let json = dir.join("summary.json");
    std::fs::write(&json, format!("{:#}\n", s.to_json())).map_err(io(&json))?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(text: &str) -> Result<Vec<Vec<(String, toml::Value)>>, SweepError> {
        combinations(&toml::from_str(text).unwrap(), Path::new("g.toml"))
    }

    #[test]
    fn grids_combine_in_key_order_and_random_draws_repeat_with_their_seed() {
        let g = grid("[grid]\n\"b.x\" = [1, 2]\n\"a.y\" = [10, 20, 30]\n").unwrap();
        let shown: Vec<String> =
            g.iter().map(|c| c.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")).collect();
        assert_eq!(shown[0], "a.y=10 b.x=1");
        assert_eq!(shown[1], "a.y=10 b.x=2");
        assert_eq!(shown[5], "a.y=30 b.x=2");
        assert_eq!(g.len(), 6);
        let r = "[grid]\n\"a\" = [1, 2]\n[random]\nsamples = 3\nseed = 7\n[random.ranges]\n\"f\" = [0.5, 2.0]\n\"i\" = [5, 7]\n";
        let (a, b) = (grid(r).unwrap(), grid(r).unwrap());
        assert_eq!(a, b);
        assert_eq!(a.len(), 6);
        for c in &a {
            let f = c[1].1.as_float().unwrap();
            let i = c[2].1.as_integer().unwrap();
            assert!((0.5..2.0).contains(&f) && (5..=7).contains(&i), "{c:?}");
        }
        assert_ne!(a[0][1], a[1][1], "draws differ");
        assert!(grid("[grid]\n\"a\" = []\n").is_err());
        assert!(grid("").is_err());
        assert!(
            grid("[grid]\n\"a\" = [1]\n[random]\nsamples = 2\nseed = 1\n[random.ranges]\n\"a\" = [1, 2]\n").is_err()
        );
    }

    #[test]
    fn keys_are_checked_against_the_configuration() {
        let known = config_keys();
        assert!(check_key("bars.range_ticks", &known).is_ok());
        assert!(check_key("risk.stop_pct", &known).is_ok());
        let e = check_key("signal.some_key", &known).unwrap_err().to_string();
        assert!(e.contains("`signal.some_key` is not a configuration key") && e.contains("no section [signal]"), "{e}");
        let e = check_key("bars.range_tick", &known).unwrap_err().to_string();
        assert!(e.contains("[bars] has: bars.range_pct"), "{e}");
        let e = check_key("metrics.listen", &known).unwrap_err().to_string();
        assert!(e.contains("[metrics] is not sweepable"), "{e}");
    }

    #[test]
    fn dotted_keys_set_nested_tables_and_quoting() {
        let mut t = toml::Table::new();
        let none = toml::Table::new();
        set_dotted(&mut t, "a.b.c", toml::Value::Integer(3), &none);
        set_dotted(&mut t, "a.d", toml::Value::Boolean(true), &none);
        assert_eq!(toml::to_string(&t).unwrap(), "[a]\nd = true\n\n[a.b]\nc = 3\n");
        // A table the base lacks starts from the defaults' (the other keys of an inline table stay valid).
        let mut t = toml::Table::new();
        set_dotted(&mut t, "strategy.base.min_imbalance", toml::Value::Float(1.5), &default_table());
        let base = &t["strategy"]["base"];
        assert_eq!((base["min_imbalance"].as_float(), base["cooldown_bars"].as_integer()), (Some(1.5), Some(8)));
        assert_eq!(t["strategy"]["zone_bins"].as_float(), Some(3.0), "a created table starts as the defaults'");
        assert_eq!(sh_quote("/tmp/x.db"), "/tmp/x.db");
        assert_eq!(sh_quote("it's here"), r"'it'\''s here'");
    }
}
