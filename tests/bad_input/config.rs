//! Bad input, config cases (issue 14). Shared helpers live in `tests/bad_input.rs` (`super::`).
//!
//! - No config error ever shows a secret: a credential-looking key anywhere is refused naming the key, its line and
//!   where credentials belong; every other parse error gives line, column and key but no source line and no value.
//! - NaN and ±inf are refused on every float key, in `[[variants]]` overrides and `[strategy]` regime rows too.
//! - An error's cause is printed once (a cause shown in a message is never also its `source()`).

use std::path::{Path, PathBuf};
use std::process::Command;

use rusto::app::Config;

const SECRET: &str = "SEKRETKEY123456";
const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/sample/btcusdt_20230404.dat.gz");

/// Where credentials belong, as `src/app/secrets.rs` reads them.
const HINT: &str = "credentials are never read from the config file: set RUSTO_API_KEY and RUSTO_API_SECRET (HMAC) \
                    or RUSTO_API_ED25519_KEY_FILE (an Ed25519 private key's PEM file, chmod 600) in the \
                    environment, or put a `key=...` line and a `secret=...` or `ed25519_private_key_file=...` line \
                    in a file only its owner can read (chmod 600) and name it in RUSTO_API_CREDENTIALS_FILE or in \
                    `[secrets] credentials_file`";

/// (name, file text with `{S}` for the secret, refused key, its line).
const CREDENTIALS: &[(&str, &str, &str, usize)] = &[
    ("secrets", "[secrets]\napi_key = \"{S}\"\n", "secrets.api_key", 2),
    ("top-level", "api_key = \"{S}\"\n", "api_key", 1),
    ("live", "[live]\napi_secret = \"{S}\"\n", "live.api_secret", 2),
    ("unterminated", "[secrets]\napi_key = \"{S}\n", "secrets.api_key", 2),
    ("bare", "api_key = {S}\n", "api_key", 1),
    ("no-equals", "[live]\ntop_n = 3\ntoken \"{S}\"\n", "live.token", 3),
    ("upper-case-late", "[risk]\nstop_pct = 0.5\n\n[live]\nAPI_KEY = \"{S}\"\n", "live.API_KEY", 5),
    ("password", "[alerts]\ndiscord_password = '{S}'\n", "alerts.discord_password", 2),
    ("private-key", "[secrets]\nprivate_key = \"\"\"\n{S}\n\"\"\"\n", "secrets.private_key", 2),
    ("passphrase-dotted", "secrets.passphrase = \"{S}\"\n", "secrets.passphrase", 1),
    ("camel-case", "[live]\napiSecret = \"{S}\"\n", "live.apiSecret", 2),
    ("table", "[live.token]\nvalue = \"{S}\"\n", "live.token", 1),
    ("inline-table", "[secrets]\ncreds = { token = \"{S}\" }\n", "secrets.creds.token", 2),
    ("array-of-tables", "[live]\naccounts = [{ name = \"a\", secret = \"{S}\" }]\n", "live.accounts.secret", 2),
    (
        "variant-override",
        "[[variants]]\nname = \"a\"\n[variants.overrides.risk]\nkey = \"{S}\"\n",
        "variants.overrides.risk.key",
        4,
    ),
];

/// (name, file text with `{S}`, the exact error after `t.toml`): values of other keys are never shown either.
const VALUES: &[(&str, &str, &str)] = &[
    (
        "wrong-type",
        "[risk]\nstop_pct = \"{S}\"\n",
        ": line 2, column 12, key `risk.stop_pct`: invalid type: string (value not shown), expected f64",
    ),
    (
        "unknown-variant",
        "[pipeline]\nfull_policy = \"{S}\"\n",
        ": line 2, column 15, key `pipeline.full_policy`: unknown variant (value not shown), expected \
         `drop-and-resync` or `spin`",
    ),
    (
        "backticks-in-value",
        "[pipeline]\nfull_policy = \"a`, expected `{S}\"\n",
        ": line 2, column 15, key `pipeline.full_policy`: unknown variant (value not shown), expected \
         `drop-and-resync` or `spin`",
    ),
    (
        "unterminated",
        "[live]\nws_url = \"{S}\n",
        ": line 2, column 26, key `live.ws_url`: invalid basic string, expected `\"`",
    ),
    (
        "bare",
        "[live]\nws_url = {S}\n",
        ": line 2, column 10, key `live.ws_url`: string values must be quoted, expected literal string",
    ),
    (
        "swallowed-lines",
        "[risk]\nstop_pct = \"\"\"\n{S}\n\"\"\"\n",
        ": line 2, column 12, key `risk.stop_pct`: invalid type: string (value not shown), expected f64",
    ),
    (
        "variant-override",
        "[[variants]]\nname = \"a\"\n[variants.overrides.risk]\nstop_pct = \"{S}\"\n",
        " [variant a]: key `risk.stop_pct`: invalid type: string (value not shown), expected f64",
    ),
    ("unknown-key-value", "[live]\nnot_here = \"{S}\"\n", ": key `live.not_here`: unknown field `not_here` in [live]"),
];

fn text(template: &str) -> String {
    template.replace("{S}", SECRET)
}

fn credential_error(path: &str, key: &str, line: usize) -> String {
    format!("{path}: line {line}: `{key}` looks like a credential (value not shown); {HINT}")
}

/// Runs the binary; returns (exit code, stdout + stderr).
fn rusto(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rusto"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RUSTO_LOG", "warn")
        .output()
        .expect("run rusto");
    let mut all = String::from_utf8_lossy(&out.stdout).into_owned();
    all.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code(), all)
}

/// The three commands that read a config file: each must refuse it with `want` and show no secret.
fn refused_by_the_binary(path: &Path, want: &str) {
    let p = path.to_str().unwrap();
    for args in [
        vec!["config", "check", p],
        vec!["replay", "--config", p, SAMPLE],
        vec!["live", "--config", p, "--duration-secs", "1"],
    ] {
        let (code, out) = rusto(&args);
        assert_eq!(code, Some(2), "{args:?}: {out}");
        assert!(!out.contains(SECRET), "{args:?} shows the secret: {out}");
        assert!(out.contains(&format!("error: {want}\n")), "{args:?}: want {want}\ngot {out}");
    }
}

#[test]
fn a_credential_in_the_config_is_refused_by_name_and_never_shown() {
    for &(name, template, key, line) in CREDENTIALS {
        let e = Config::from_toml(&text(template), "t.toml").expect_err(name).to_string();
        assert_eq!(e, credential_error("t.toml", key, line), "{name}");
        let f = super::tmp(&format!("cred-{name}.toml"), text(template).as_bytes());
        let want = credential_error(f.to_str().unwrap(), key, line);
        assert_eq!(Config::load(f.to_str().unwrap()).expect_err(name).to_string(), want, "{name}");
        refused_by_the_binary(&f, &want);
    }
}

#[test]
fn parse_errors_name_line_and_key_but_never_quote_a_line_or_a_value() {
    for &(name, template, want) in VALUES {
        let e = Config::from_toml(&text(template), "t.toml").expect_err(name).to_string();
        assert_eq!(e, format!("t.toml{want}"), "{name}");
        let f = super::tmp(&format!("value-{name}.toml"), text(template).as_bytes());
        let path = f.to_str().unwrap();
        assert_eq!(Config::load(path).expect_err(name).to_string(), format!("{path}{want}"), "{name}");
        refused_by_the_binary(&f, &format!("{path}{want}"));
    }
}

#[test]
fn no_schema_key_looks_like_a_credential() {
    // `[secrets] credentials_file` (and every other key of the schema) is accepted.
    let c = Config::from_toml("[secrets]\ncredentials_file = \"/etc/rusto/creds\"\n", "t.toml").unwrap();
    assert_eq!(c.secrets.credentials_file.as_deref(), Some("/etc/rusto/creds"));
    let file = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/default.toml")).unwrap();
    Config::from_toml(&file, "default.toml").unwrap();
    for f in ["tests/config/ab-variants.toml", "tests/config/loose-signals.toml"] {
        Config::load(&format!("{}/{f}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    }
}

/// The issue's keys, with their exact refusal.
const ISSUE_FLOAT_KEYS: &[(&str, &str)] = &[
    ("risk.stop_pct", "0.001 to 50 (%)"),
    ("risk.leverage", "1 to 125"),
    ("risk.initial_balance", "1 to 1e12 USDT"),
    ("risk.daily_loss_limit_pct", "0 to 100 (%)"),
    ("position.taker_fee", "0 to 0.01"),
    ("position.tp1_rr", "0.01 to 100"),
    ("position.maintenance_margin_rate", "0 to 0.5"),
    ("gate.max_spread_bps", "0 to 10000 bps"),
];

const NON_FINITE: [(&str, &str); 3] = [("nan", "NaN"), ("inf", "inf"), ("-inf", "-inf")];

/// The default configuration's `key=value` lines.
fn canonical() -> Vec<(String, String)> {
    let c = Config::default().canonical();
    c.lines().map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).unwrap()).collect()
}

/// A file setting `key` to `value`, with the other keys of its table when it is a regime row (those have no
/// defaults of their own). `under` prefixes every table name (`variants.overrides`).
fn toml_setting(key: &str, value: &str, under: &str) -> String {
    let (table, field) = key.rsplit_once('.').unwrap();
    let table = if under.is_empty() { table.to_string() } else { format!("{under}.{table}") };
    let mut out = format!("[{table}]\n");
    let siblings = canonical();
    let row = key.matches('.').count() == 2;
    for (k, v) in &siblings {
        if k == key {
            out.push_str(&format!("{field} = {value}\n"));
        } else if let Some((t, f)) = k.rsplit_once('.')
            && row
            && t == key.rsplit_once('.').unwrap().0
        {
            out.push_str(&format!("{f} = {v}\n"));
        }
    }
    out
}

fn is_float(v: &str) -> bool {
    v.contains('.') && v.parse::<f64>().is_ok()
}

#[test]
fn nan_and_infinities_are_refused_on_the_issue_keys() {
    for &(key, allowed) in ISSUE_FLOAT_KEYS {
        for (written, shown) in NON_FINITE {
            let e = Config::from_toml(&toml_setting(key, written, ""), "t.toml").unwrap_err().to_string();
            assert_eq!(e, format!("config key `{key}` = {shown}: {allowed}"));
            let section = key.split('.').next().unwrap();
            let v = format!("[[variants]]\nname = \"v\"\n{}", toml_setting(key, written, "variants.overrides"));
            assert!(["risk", "position", "gate"].contains(&section));
            let e = Config::from_toml(&v, "t.toml").unwrap_err().to_string();
            assert_eq!(e, format!("variant `v`: config key `{key}` = {shown}: {allowed}"));
        }
    }
}

/// Every float key of the schema (found from the defaults, so a new key is covered the day it is added), in the
/// base file and, for the sections a variant may override, in a `[[variants]]` override; regime rows included.
#[test]
fn every_float_key_refuses_nan_and_infinities() {
    let floats: Vec<String> = canonical().into_iter().filter(|(_, v)| is_float(v)).map(|(k, _)| k).collect();
    assert!(floats.len() >= 40, "{floats:?}");
    assert!(floats.iter().any(|k| k == "strategy.trend_high.min_imbalance"), "{floats:?}");
    let mut checked = 0;
    for key in &floats {
        for (written, shown) in NON_FINITE {
            let e = Config::from_toml(&toml_setting(key, written, ""), "t.toml").unwrap_err().to_string();
            assert!(e.starts_with(&format!("config key `{key}` = {shown}: ")), "{key} = {written}: {e}");
            let section = key.split('.').next().unwrap();
            if ["strategy", "gate", "risk", "position"].contains(&section) {
                let v = format!("[[variants]]\nname = \"v\"\n{}", toml_setting(key, written, "variants.overrides"));
                let e = Config::from_toml(&v, "t.toml").unwrap_err().to_string();
                assert!(e.starts_with(&format!("variant `v`: config key `{key}` = {shown}: ")), "{key}: {e}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, floats.len() * 3);
    // The one float list.
    let e = Config::from_toml("[tune]\ncandidates = [1.5, nan]\n", "t.toml").unwrap_err().to_string();
    assert_eq!(e, "config key `tune.candidates` = [1.5, NaN]: 1 to 16 positive ratios");
}

/// Paths of every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// One rule for error causes across the crate: a cause is shown in its error's message and is then never also
/// its `source()` (`#[from]`, `#[source]`, a field named `source`), or `main`'s `{:#}` prints it twice; only
/// `#[error(transparent)]` wrappers use `#[from]`.
#[test]
fn no_error_both_shows_and_chains_its_cause() {
    let mut files = Vec::new();
    sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
    let mut bad = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            let Some(attr) = l.trim().strip_prefix("#[error(") else { continue };
            // The variant: up to the next `#[error(` or the end of the enum.
            let body: Vec<&str> = lines[i + 1..]
                .iter()
                .take_while(|l| !l.trim().starts_with("#[error(") && **l != "}")
                .copied()
                .collect();
            let chained = body.iter().any(|l| {
                let t = l.trim();
                t.contains("#[from]") || t.contains("#[source]") || t.starts_with("source:")
            });
            if chained && !attr.starts_with("transparent") {
                bad.push(format!("{}:{}: {}", f.display(), i + 1, l.trim()));
            }
        }
    }
    assert!(bad.is_empty(), "errors that show their cause and chain it too: {bad:#?}");
}

/// `needle` in `out` exactly once.
fn once(out: &str, needle: &str) {
    assert_eq!(out.matches(needle).count(), 1, "`{needle}` not exactly once in: {out}");
}

#[test]
fn an_error_names_its_cause_once() {
    let (code, out) = rusto(&["replay", "/nonexistent/rusto.dat.gz"]);
    assert_eq!(code, Some(2));
    assert!(out.contains("error: replay failed: /nonexistent/rusto.dat.gz: no such file\n"), "{out}");
    once(&out, "no such file");
    let (_, out) = rusto(&["config", "check", "/nonexistent/rusto.toml"]);
    assert!(out.contains("error: /nonexistent/rusto.toml: No such file or directory (os error 2)\n"), "{out}");
    once(&out, "No such file or directory");
    let (_, out) = rusto(&["replay", "--config", "/nonexistent/rusto.toml", SAMPLE]);
    once(&out, "No such file or directory");
    let dir = std::env::temp_dir();
    let (_, out) = rusto(&["config", "check", dir.to_str().unwrap()]);
    once(&out, "Is a directory");
    for flag in ["--bars-csv", "--signals-csv"] {
        let (code, out) = rusto(&["replay", flag, "/nonexistent/dir/out.csv", SAMPLE]);
        assert_eq!(code, Some(2), "{out}");
        let kind = &flag[2..flag.len() - 4];
        assert!(
            out.contains(&format!("error: replay failed: {kind} csv /nonexistent/dir/out.csv: No such file")),
            "{out}"
        );
        once(&out, "No such file or directory");
    }
    let (_, out) = rusto(&["report", "--db", "/nonexistent/rusto.db"]);
    once(&out, "no such file");
}

/// A negative fee (taker, liquidation clearance) is refused naming the key, in the base file and in a variant.
#[test]
fn a_negative_fee_is_refused_with_its_key() {
    for (key, allowed) in [("position.taker_fee", "0 to 0.01"), ("position.liquidation_fee_rate", "0 to 0.1")] {
        let e = Config::from_toml(&toml_setting(key, "-0.0001", ""), "t.toml").unwrap_err().to_string();
        assert_eq!(e, format!("config key `{key}` = -0.0001: {allowed}"));
        let v = format!("[[variants]]\nname = \"v\"\n{}", toml_setting(key, "-0.0001", "variants.overrides"));
        let e = Config::from_toml(&v, "t.toml").unwrap_err().to_string();
        assert_eq!(e, format!("variant `v`: config key `{key}` = -0.0001: {allowed}"));
    }
    // The defaults: Binance's base-tier taker fee and BTCUSDT's clearance fee rate.
    let c = Config::default();
    assert_eq!((c.position.taker_fee, c.position.liquidation_fee_rate), (0.0005, 0.012));
}

/// The refusal of a `[position]` text, through `Config::from_toml` (base file, then `[[variants]]` override where
/// `variant` is the override's text) and through the binary's `config check`; `{P}` in the wanted errors stands for
/// the file's path.
fn refused_everywhere(name: &str, texts: [&str; 2], wants: [&str; 2]) {
    let files = [texts[0].to_string(), format!("[[variants]]\nname = \"v\"\n{}", texts[1])];
    for ((text, want), place) in files.iter().zip(wants).zip(["base", "variant"]) {
        let e = Config::from_toml(text, "t.toml").expect_err(name).to_string();
        assert_eq!(e, want.replace("{P}", "t.toml"), "{name} in the {place}");
        let f = super::tmp(&format!("exec-{name}-{place}.toml"), text.as_bytes());
        let (code, out) = rusto(&["config", "check", f.to_str().unwrap()]);
        assert_eq!(code, Some(2), "{name} in the {place}: {out}");
        let shown = want.replace("{P}", f.to_str().unwrap());
        assert!(out.contains(&format!("error: {shown}\n")), "{name} in the {place}: want {shown}\ngot {out}");
    }
}

/// Issue 10, bad input: a negative fee or latency, a maker fee above the taker fee and an unknown stop trigger are
/// each refused naming the key, in the base file and in a `[[variants]]` override, and by `config check`.
#[test]
fn execution_keys_out_of_bounds_are_refused_with_their_key() {
    let bounded = [
        ("negative-taker-fee", "taker_fee = -0.0005", "`position.taker_fee` = -0.0005: 0 to 0.01"),
        ("negative-maker-fee", "maker_fee = -0.0002", "`position.maker_fee` = -0.0002: 0 to taker_fee"),
        ("negative-latency", "order_latency_ms = -1.0", "`position.order_latency_ms` = -1: 0 to 10000 ms"),
        ("maker-above-taker", "maker_fee = 0.0006", "`position.maker_fee` = 0.0006: 0 to taker_fee"),
        (
            "maker-above-its-taker",
            "taker_fee = 0.0004\nmaker_fee = 0.00041",
            "`position.maker_fee` = 0.00041: 0 to taker_fee",
        ),
    ];
    for (name, keys, refusal) in bounded {
        let texts = [format!("[position]\n{keys}\n"), format!("[variants.overrides.position]\n{keys}\n")];
        let wants = [format!("config key {refusal}"), format!("variant `v`: config key {refusal}")];
        refused_everywhere(name, [&texts[0], &texts[1]], [&wants[0], &wants[1]]);
    }
    let unknown = "key `position.stop_trigger`: unknown variant (value not shown), expected `last` or `mark`";
    refused_everywhere(
        "stop-trigger-bid",
        ["[position]\nstop_trigger = \"bid\"\n", "[variants.overrides.position]\nstop_trigger = \"bid\"\n"],
        [&format!("{{P}}: line 2, column 16, {unknown}"), &format!("{{P}} [variant v]: {unknown}")],
    );
    // A variant lowering the base's taker fee below the base's maker fee: the merged account is refused.
    let v = "[position]\ntaker_fee = 0.001\nmaker_fee = 0.0008\n[[variants]]\nname = \"v\"\n\
             [variants.overrides.position]\ntaker_fee = 0.0005\n";
    let e = Config::from_toml(v, "t.toml").unwrap_err().to_string();
    assert_eq!(e, "variant `v`: config key `position.maker_fee` = 0.0008: 0 to taker_fee");
    // The bounds themselves are allowed: free fees, zero latency, maker = taker, the mark trigger.
    let ok = "[position]\ntaker_fee = 0.0\nmaker_fee = 0.0\norder_latency_ms = 0.0\nstop_trigger = \"mark\"\n\
              [[variants]]\nname = \"v\"\n[variants.overrides.position]\ntaker_fee = 0.0004\nmaker_fee = 0.0004\n\
              order_latency_ms = 10000.0\nstop_trigger = \"last\"\n";
    let c = Config::from_toml(ok, "t.toml").unwrap();
    assert_eq!((c.position.maker_fee, c.resolved_variants[0].position.maker_fee), (0.0, 0.0004));
}
