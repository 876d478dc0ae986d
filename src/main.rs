//! `rusto`: command-line entry point.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use rusto::config::Config;
use rusto::pipeline::{ReplayOptions, Speed, run_replay};

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
    },
    /// Configuration helpers.
    Config {
        #[command(subcommand)]
        cmd: ConfigCmd,
    },
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
        Cmd::Replay { files, speed, bars_csv, exchange_info, signals_csv, db, json } => {
            let files = if files.is_empty() { bundled_sample()? } else { files };
            let opts = ReplayOptions { files, speed, bars_csv, exchange_info, signals_csv, db };
            let report = run_replay(&cfg, &opts).context("replay failed")?;
            if json {
                println!("{}", rusto::report::to_json(&report));
            } else {
                print!("{}", rusto::report::to_text(&report));
            }
        }
        Cmd::Config { cmd: ConfigCmd::Check { file } } => {
            Config::load(&file.to_string_lossy())?;
            println!("{}: ok", file.display());
        }
        Cmd::Config { cmd: ConfigCmd::Default } => {
            print!("{}", include_str!("../config/default.toml"));
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
