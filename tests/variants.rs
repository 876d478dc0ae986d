//! A/B variants on the real bundled recording: shadow traders on the same feed, tagged rows, the report's comparison.

use std::path::PathBuf;

use rusto::app::Config;
use rusto::app::{ReplayOptions, run_replay};
use rusto::recording::Speed;

#[test]
fn variants_trade_on_the_same_feed_and_are_compared() {
    let cfg = Config::load("tests/config/ab-variants.toml").unwrap();
    assert_eq!(cfg.variant_names(), vec!["quick_tp", "strict"]);
    assert_eq!(cfg.resolved_variants[0].position.tp1_rr, 0.5, "override merged");
    assert_eq!(cfg.resolved_variants[0].position.tp2_rr, 1.0);
    assert_eq!(cfg.resolved_variants[0].strategy.base, cfg.strategy.base, "untouched sections inherited");
    let dir = std::env::temp_dir().join(format!("rusto-variants-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("ab.db");
    let _ = std::fs::remove_file(&db);
    let opts = ReplayOptions {
        files: vec![
            PathBuf::from("data/sample/btcusdt_20230404.dat.gz"),
            PathBuf::from("data/sample/btcusdt_20230405.dat.gz"),
        ],
        speed: Speed::Asap,
        bars_csv: None,
        exchange_info: None,
        signals_csv: None,
        db: Some(db.clone()),
        window: Default::default(),
    };
    let r = run_replay(&cfg, &opts).unwrap();
    let s = &r.engine.symbols[0];
    // At BTCUSDT's real 0.10 tick (bundled exchangeInfo; 1 USDT bars = 10 ticks) the sample gives one long and
    // two shorts (before, at an inferred 0.01 tick: one of each).
    assert_eq!(s.trader().signals, [1, 2], "base: the sample's long and two shorts");
    assert_eq!(s.variants()[0].signals, [1, 2], "quick_tp has the base entry rules");
    assert_eq!(
        s.variants()[1].signals,
        [0, 2],
        "strict filters the range_low long (imbalance 1.24 < 15); range_high keeps the base threshold"
    );
    // Every trader's positions are stored under its name, with their own accounts.
    let c = rusqlite::Connection::open(&db).unwrap();
    let n = |v: &str| -> i64 {
        c.query_row("SELECT count(*) FROM positions WHERE variant = ?1", [v], |r| r.get(0)).unwrap()
    };
    assert_eq!(n("base") as u64, s.trader().opened);
    assert_eq!(n("quick_tp") as u64, s.variants()[0].opened);
    assert_eq!(n("strict") as u64, s.variants()[1].opened);
    let sum: f64 =
        c.query_row("SELECT sum(pnl) FROM positions WHERE variant = 'strict'", [], |r| r.get(0)).unwrap_or(0.0);
    assert!((sum - s.variants()[1].pnl).abs() < 1e-9);
    assert!((r.engine.variant_accounts()[1].risk.balance - (10_000.0 + s.variants()[1].pnl)).abs() < 1e-6);
    // The report compares each variant with base.
    let trades = rusto::report::load_trades(&db).unwrap();
    let cmp = rusto::report::variant_comparison(&trades);
    assert!(cmp["quick_tp"]["vs_base"]["ci95_pct"].is_array(), "{cmp}");
    assert_eq!(cmp["base"]["trades"].as_u64().unwrap(), s.trader().opened);
    // A bad variant is a clear config error.
    let bad = "[[variants]]\nname = \"base\"\n";
    assert!(Config::from_toml(bad, "t").unwrap_err().to_string().contains("variants.name"));
    let bad = "[[variants]]\nname = \"x\"\n[variants.overrides.live]\ntop_n = 3\n";
    assert!(Config::from_toml(bad, "t").unwrap_err().to_string().contains("variants.overrides"));
    let bad = "[[variants]]\nname = \"x\"\n[variants.overrides.position]\ntp1_rr = -1.0\n";
    assert!(Config::from_toml(bad, "t").unwrap_err().to_string().contains("position.tp1_rr"));
}
