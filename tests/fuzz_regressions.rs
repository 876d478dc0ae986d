//! The fuzz seeds and every input the fuzzers found, run through the fuzz targets' own checks, so CI keeps checking
//! them without cargo-fuzz (see fuzz/README.md).
//!
//! For each target (`parse_frame`, `book_tape`, `classify_line`, `parse_config`, `order_messages`): every file in `fuzz/seeds/<target>/` and in
//! `fuzz/regressions/<target>/` must pass the target's checks. Files in `fuzz/regressions/<target>/open/` reproduce
//! bugs that are not fixed yet: they must still fail (so each one keeps reproducing what its README entry says);
//! once a fix makes one pass, this test says so, and the file moves up into `fuzz/regressions/<target>/`.

#[path = "../fuzz/src/book_tape.rs"]
mod book_tape;
#[path = "../fuzz/src/config_check.rs"]
mod config_check;
#[path = "../fuzz/src/line_check.rs"]
mod line_check;
#[path = "../fuzz/src/order_check.rs"]
mod order_check;
#[path = "../fuzz/src/parse_check.rs"]
mod parse_check;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .map(|e| e.expect("read_dir entry").path())
        .filter(|p| p.is_file() && p.extension().is_none_or(|x| x != "md"))
        .collect();
    v.sort();
    v
}

/// Runs `check` on every input of a target; returns how many seeds and regression inputs passed.
fn run_target(target: &str, check: fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let seeds = files(&root.join("seeds").join(target));
    assert!(!seeds.is_empty(), "no seeds for {target}");
    let mut must_pass = seeds;
    must_pass.extend(files(&root.join("regressions").join(target)));
    let mut failed = Vec::new();
    for f in &must_pass {
        let data = std::fs::read(f).expect("read input");
        if catch_unwind(AssertUnwindSafe(|| check(&data))).is_err() {
            failed.push(f.display().to_string());
        }
    }
    // The open bugs so far are overflow panics, which only debug-assertion builds (`cargo test`) raise.
    if cfg!(debug_assertions) {
        for f in files(&root.join("regressions").join(target).join("open")) {
            let data = std::fs::read(&f).expect("read input");
            if catch_unwind(AssertUnwindSafe(|| check(&data))).is_ok() {
                failed.push(format!(
                    "{} passes now: the bug looks fixed; move the file up to fuzz/regressions/{target}/",
                    f.display()
                ));
            }
        }
    }
    assert!(failed.is_empty(), "{target}: {failed:#?}");
    must_pass.len()
}

#[test]
fn parse_frame_inputs_hold_the_parser_invariants() {
    let n = run_target("parse_frame", parse_check::check_frame);
    assert!(n >= 20, "only {n} parse_frame inputs");
}

#[test]
fn book_tape_inputs_hold_the_book_invariants() {
    run_target("book_tape", |data| {
        let _ = book_tape::run(data);
    });
}

#[test]
fn classify_line_inputs_do_not_panic() {
    run_target("classify_line", line_check::check_line);
}

#[test]
fn parse_config_inputs_never_show_a_planted_secret() {
    let n = run_target("parse_config", config_check::check_config);
    assert!(n >= 6, "only {n} parse_config inputs");
}

#[test]
fn order_messages_inputs_hold_the_order_readers_invariants() {
    let n = run_target("order_messages", order_check::check_order_message);
    assert!(n >= 10, "only {n} order_messages inputs");
}
