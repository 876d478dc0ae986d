//! `rusto`: command-line entry point.

use std::path::PathBuf;
use std::process::ExitCode;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use rusto::app::Config;
use rusto::app::{ReplayOptions, run_replay_cached};
use rusto::recording::{LocalTime, Speed, TimeWindow};

/// The recording replayed when `rusto replay` is given no file (bundled in the repository).
const BUNDLED_SAMPLE: &[&str] = &["data/sample/btcusdt_20230404.dat.gz", "data/sample/btcusdt_20230405.dat.gz"];

#[derive(Parser)]
#[command(name = "rusto", version, about = "Low-latency order-flow trading engine for Binance USD-M futures")]
struct Cli {
    /// Configuration file (TOML); built-in defaults when absent.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Replay recordings through the full pipeline (net → ring → compute → persist) and print a summary.
    Replay {
        /// Recordings (`<local ts> <frame>` lines, gzip or plain, or cryptofeed files); merged by local time.
        /// With none, the bundled real BTCUSDT sample is replayed.
        files: Vec<PathBuf>,
        /// Pacing: asap, realtime, or a speed-up factor such as 10.
        #[arg(long, default_value = "asap")]
        speed: Speed,
        /// Write every closed range bar to this CSV.
        #[arg(long)]
        bars_csv: Option<PathBuf>,
        /// An exchangeInfo body (raw JSON or a recording line) with tick and step sizes.
        #[arg(long)]
        exchange_info: Option<PathBuf>,
        /// SQLite database for positions, fills, entry features, tuning logs and the hour expectancy state.
        #[arg(long)]
        db: Option<PathBuf>,
        /// Write every entry signal with its features to this CSV.
        #[arg(long)]
        signals_csv: Option<PathBuf>,
        /// Print one JSON object on stdout instead of the text summary.
        #[arg(long)]
        json: bool,
        /// Event cache folder: the first replay of a file set writes its parsed events there, later replays of the
        /// same inputs (same bytes, parser and config) read them instead of inflating and parsing.
        #[arg(long)]
        cache: Option<PathBuf>,
        /// Entries only from this local receive time on (`2023-04-05T00:02:00Z` or a Unix timestamp); the frames
        /// before it warm the books, bars, flow, profile, regime and tuning up without trading.
        #[arg(long)]
        from: Option<LocalTime>,
        /// End the stream before the first frame received at or after this time (positions still open close then).
        #[arg(long)]
        until: Option<LocalTime>,
    },
    /// Paper trading on the live feed: the whole pipeline, until SIGINT/SIGTERM (or --duration-secs).
    Live {
        /// Symbols (comma separated); default: [live] symbols, or the top N by 24 h quote volume.
        #[arg(long, value_delimiter = ',')]
        symbols: Vec<String>,
        /// SQLite database.
        #[arg(long)]
        db: Option<PathBuf>,
        /// Stop after this many seconds.
        #[arg(long)]
        duration_secs: Option<u64>,
        /// Print the final report as one JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Record the live feed (and REST snapshots) as `<local ns> <raw frame>` lines; gzip when FILE ends in .gz.
    Record {
        /// Output file.
        #[arg(long)]
        out: PathBuf,
        /// Symbols (comma separated); default as for `live`.
        #[arg(long, value_delimiter = ',')]
        symbols: Vec<String>,
        /// Stop after this many seconds.
        #[arg(long)]
        duration_secs: Option<u64>,
    },
    /// Print the current top symbols by 24 h quote volume.
    Symbols,
    /// Convert Binance's historical aggTrades / bookTicker CSVs (plain or gzip) into the replay format.
    Import {
        /// Input files: the archive's .zip as downloaded, .csv or .csv.gz; several files, days and kinds merged by time.
        files: Vec<PathBuf>,
        /// Output file (gzip when it ends in .gz).
        #[arg(long)]
        out: PathBuf,
        /// Symbol (default: from the file name).
        #[arg(long)]
        symbol: Option<String>,
    },
    /// The improvement-loop report from a database: expectancy by symbol, hour, regime and exit reason, negative
    /// feature ranges, and the MFE/MAE fit of the exits.
    Report {
        /// The database.
        #[arg(long)]
        db: PathBuf,
        /// Equal-count bins per feature.
        #[arg(long, default_value_t = 5)]
        bins: usize,
        /// One JSON object instead of tables.
        #[arg(long)]
        json: bool,
        /// Also write SVG charts (equity curve, PnL by UTC hour heatmap, MFE/MAE scatter) into this folder.
        #[arg(long)]
        plot: Option<PathBuf>,
    },
    /// A parameter sweep: every cell of a grid (or random sample) over configuration keys replayed in its own
    /// process, then a summary ranked by expectancy (README "Parameter sweeps").
    #[command(args_conflicts_with_subcommands = true)]
    Sweep {
        #[command(subcommand)]
        cmd: Option<SweepCmd>,
        #[command(flatten)]
        args: SweepArgs,
    },
    /// Configuration helpers.
    Config {
        #[command(subcommand)]
        cmd: ConfigCmd,
    },
}

#[derive(Subcommand)]
enum SweepCmd {
    /// The summary of a sweep folder from its cells' databases (after the emitted jobs ran elsewhere).
    Merge {
        /// The sweep folder (`--dir` of the sweep).
        dir: PathBuf,
        /// One JSON object instead of the table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
struct SweepArgs {
    /// The grid file: `[grid] "section.key" = [values]` and/or `[random] samples, seed` with `[random.ranges]`.
    #[arg(long)]
    grid: Option<PathBuf>,
    /// Recordings every cell replays.
    files: Vec<PathBuf>,
    /// Output folder: each cell's configuration, database, JSON and log, the manifest and the summary.
    #[arg(long, default_value = "sweep")]
    dir: PathBuf,
    /// Most replays at a time (default: the cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// The replay event cache folder (the first replay parses, the others read the cache).
    #[arg(long)]
    cache: Option<PathBuf>,
    /// An exchangeInfo file for every replay.
    #[arg(long)]
    exchange_info: Option<PathBuf>,
    /// Walk-forward: the train window `FROM..UNTIL` (either side may be empty); cells are ranked on it.
    #[arg(long, requires = "test")]
    train: Option<String>,
    /// Walk-forward: the test window `FROM..UNTIL`, reported out of sample (must start at or after train's end).
    #[arg(long, requires = "train")]
    test: Option<String>,
    /// Write the commands (DIR/jobs.txt for GNU parallel, DIR/slurm.sh for a Slurm array) instead of running them.
    #[arg(long)]
    emit_jobs: bool,
    /// The rusto binary the commands run (default: this one; a bare name is looked up on each host's PATH).
    #[arg(long)]
    bin: Option<PathBuf>,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum ConfigCmd {
    /// Validate a configuration file.
    Check {
        /// The file.
        file: PathBuf,
    },
    /// Print the default configuration.
    Default,
}

fn bundled_sample() -> anyhow::Result<Vec<PathBuf>> {
    let roots = [PathBuf::from("."), PathBuf::from(env!("CARGO_MANIFEST_DIR"))];
    for root in roots {
        let files: Vec<PathBuf> = BUNDLED_SAMPLE.iter().map(|f| root.join(f)).collect();
        if files.iter().all(|f| f.exists()) {
            return Ok(files);
        }
    }
    anyhow::bail!("no recording given and the bundled sample ({}) was not found", BUNDLED_SAMPLE.join(", "))
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let cfg = match &cli.config {
        Some(p) => Config::load(&p.to_string_lossy())?,
        None => Config::default(),
    };
    match cli.cmd {
        Cmd::Replay { files, speed, bars_csv, exchange_info, signals_csv, db, json, cache, from, until } => {
            let files = if files.is_empty() { bundled_sample()? } else { files };
            let window = TimeWindow { from_ns: from.map(|t| t.0), until_ns: until.map(|t| t.0) };
            if let (Some(f), Some(u)) = (window.from_ns, window.until_ns)
                && f >= u
            {
                anyhow::bail!("--from must be before --until");
            }
            let opts = ReplayOptions { files, speed, bars_csv, exchange_info, signals_csv, db, window };
            let (report, outcome) = run_replay_cached(&cfg, &opts, cache.as_deref()).context("replay failed")?;
            if let Some(o) = outcome {
                eprintln!(
                    "replay cache {}: {} (files refused: {}{})",
                    o.path.display(),
                    if o.hit { "hit" } else { "miss" },
                    o.rejected,
                    if o.written { ", written" } else { "" }
                );
            }
            if json {
                println!("{}", rusto::report::to_json(&report));
            } else {
                print!("{}", rusto::report::to_text(&report));
            }
        }
        Cmd::Live { symbols, db, duration_secs, json } => {
            let stop = Arc::new(AtomicBool::new(false));
            rusto::app::stop_on_signals(&stop)?;
            let opts = rusto::app::LiveOptions { symbols, duration: duration_secs.map(Duration::from_secs), db };
            let r = rusto::app::run_live(&cfg, &opts, stop).context("live run failed")?;
            if json {
                println!("{}", rusto::report::live_json(&r));
            } else {
                print!("{}", rusto::report::live_text(&r));
            }
        }
        Cmd::Record { out, symbols, duration_secs } => {
            let stop = Arc::new(AtomicBool::new(false));
            rusto::app::stop_on_signals(&stop)?;
            let st = rusto::app::run_record(&cfg, &symbols, &out, duration_secs.map(Duration::from_secs), stop)
                .context("record failed")?;
            eprintln!(
                "recorded {} frames ({} bytes) and {} snapshots to {}",
                st.frames,
                st.bytes,
                st.snapshots,
                out.display()
            );
        }
        Cmd::Report { db, bins, json, plot } => report(&cfg, &db, bins, json, plot)?,
        Cmd::Import { files, out, symbol } => import(&files, &out, symbol.as_deref())?,
        Cmd::Symbols => {
            for (i, (s, q)) in rusto::app::print_symbols(&cfg)?.iter().enumerate() {
                println!("{:>2} {:<16} {:>20.0}", i + 1, s.as_str(), q);
            }
        }
        Cmd::Sweep { cmd: Some(SweepCmd::Merge { dir, json }), .. } => {
            let s = rusto::app::merge_sweep(&dir)?;
            print_sweep(&s, json)?;
        }
        Cmd::Sweep { cmd: None, args } => sweep(cli.config, args)?,
        Cmd::Config { cmd: ConfigCmd::Check { file } } => {
            let c = Config::load(&file.to_string_lossy())?;
            let creds = match rusto::app::load_secrets(&c.secrets)? {
                Some(_) => "API credentials found (not shown)",
                None => "no API credentials (paper trading)",
            };
            println!("{}: ok; {creds}", file.display());
        }
        Cmd::Config { cmd: ConfigCmd::Default } => {
            print!("{}", include_str!("../config/default.toml"));
        }
    }
    Ok(())
}

/// `rusto report`: the review of a database's closed trades (and charts).
fn report(cfg: &Config, db: &std::path::Path, bins: usize, json: bool, plot: Option<PathBuf>) -> anyhow::Result<()> {
    let trades = rusto::report::load_trades(db)?;
    let modes = rusto::persist::position_run_modes(db)?;
    if modes.iter().any(|m| m.contains("top_of_book") || m.contains("mixed")) && modes.len() > 1 {
        eprintln!(
            "warning: {} holds positions of runs with different market models ({}): top-of-book replays fill on the \
             ticker's level only; compare them in separate databases",
            db.display(),
            modes.join(", ")
        );
    }
    let d = rusto::report::Distances {
        stop_pct: cfg.risk.stop_pct,
        tp1_pct: cfg.risk.stop_pct * cfg.position.tp1_rr,
        tp2_pct: cfg.risk.stop_pct * cfg.position.tp2_rr,
        soft_stop_pct: cfg.position.soft_stop_drawdown_pct,
        fees_pct: cfg.position.taker_fee * 200.0,
    };
    let mut r = rusto::report::build_review(&trades, d, bins);
    r.real_vs_paper = rusto::report::load_real_vs_paper(db)?;
    if let Some(dir) = plot {
        let exits: Vec<i64> = trades.iter().map(|t| t.exit_ms).collect();
        rusto::report::write_plots(&dir, &trades, &exits, d).with_context(|| format!("plots in {}", dir.display()))?;
        eprintln!("charts written to {}", dir.display());
    }
    if json {
        println!("{r}");
    } else {
        print!("{}", rusto::report::review_text(&r));
    }
    Ok(())
}

/// `A..B` (either side may be empty) as a replay window.
fn window_arg(flag: &str, text: &str) -> anyhow::Result<TimeWindow> {
    let (a, b) = text.split_once("..").with_context(|| format!("--{flag} {text:?}: use FROM..UNTIL"))?;
    let t = |s: &str| -> anyhow::Result<Option<i64>> {
        if s.is_empty() {
            return Ok(None);
        }
        s.parse::<LocalTime>().map(|t| Some(t.0)).map_err(|e| anyhow::anyhow!("--{flag}: {e}"))
    };
    let w = TimeWindow { from_ns: t(a)?, until_ns: t(b)? };
    if let (Some(f), Some(u)) = (w.from_ns, w.until_ns)
        && f >= u
    {
        anyhow::bail!("--{flag} {text:?}: FROM must be before UNTIL");
    }
    Ok(w)
}

/// The summary on stdout; an error when a cell failed (after the summary, which lists them).
fn print_sweep(s: &rusto::report::SweepSummary, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{:#}", s.to_json());
    } else {
        print!("{}", s.to_text());
    }
    if s.failed() > 0 {
        anyhow::bail!("{} of {} cells failed (see the summary)", s.failed(), s.cells.len());
    }
    Ok(())
}

/// `rusto sweep`: prepare the cells, then run them here (or write their commands), then the summary.
fn sweep(base_config: Option<PathBuf>, a: SweepArgs) -> anyhow::Result<()> {
    let grid = a.grid.context("--grid is required (or `rusto sweep merge DIR`)")?;
    let walk_forward = match (a.train.as_deref(), a.test.as_deref()) {
        (Some(tr), Some(te)) => {
            let (train, test) = (window_arg("train", tr)?, window_arg("test", te)?);
            match (train.until_ns, test.from_ns) {
                (Some(u), Some(f)) if f >= u => {}
                _ => anyhow::bail!("--test must start at or after the end of --train (both bounds given)"),
            }
            Some((train, test))
        }
        _ => None,
    };
    let jobs = a.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let files = if a.files.is_empty() { bundled_sample()? } else { a.files };
    let opts = rusto::app::SweepOptions {
        grid,
        base_config,
        files,
        dir: a.dir,
        jobs,
        cache: a.cache,
        exchange_info: a.exchange_info,
        walk_forward,
        bin: a.bin,
    };
    let m = rusto::app::prepare_sweep(&opts)?;
    if a.emit_jobs {
        let e = rusto::app::emit_jobs(&m, &opts)?;
        eprintln!(
            "{} commands in {} (e.g. `parallel --jobs {jobs} < {}`, or `sbatch {}`); then `rusto sweep merge {}`",
            e.n,
            e.jobs.display(),
            e.jobs.display(),
            e.slurm.display(),
            opts.dir.display()
        );
        return Ok(());
    }
    let t = std::time::Instant::now();
    let failed = rusto::app::run_sweep(&m, &opts)?;
    eprintln!(
        "sweep: {} cells x {} windows in {:.1} s with {jobs} jobs ({failed} replays failed)",
        m.cells.len(),
        m.phases.len(),
        t.elapsed().as_secs_f64()
    );
    let s = rusto::app::merge_sweep(&opts.dir)?;
    print_sweep(&s, a.json)
}

/// `rusto import`: third-party files into a recording.
fn import(files: &[PathBuf], out: &std::path::Path, symbol: Option<&str>) -> anyhow::Result<()> {
    let t = std::time::Instant::now();
    let st = rusto::recording::import_files(files, symbol, out)?;
    let secs = t.elapsed().as_secs_f64();
    eprintln!(
        "imported {} rows ({} malformed skipped) into {} in {:.2} s ({:.0} rows/s)",
        st.rows,
        st.malformed,
        out.display(),
        secs,
        st.rows as f64 / secs.max(1e-9)
    );
    Ok(())
}

fn main() -> ExitCode {
    rusto::app::init_log();
    let code = match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            rusto::app::flush_log();
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    };
    rusto::app::flush_log();
    code
}
