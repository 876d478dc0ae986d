//! The source tree's layering, read from the `crate::` paths of `src/` (test modules excluded): which layer may use
//! which, and no import cycle between files. The layers and the threads are drawn in the README ("Architecture").
//!
//! A path is resolved to the deepest file it names: `crate::compute::market::book::Book` is an edge to
//! `src/compute/market/book.rs`; a path that stops at a folder (`crate::compute::Engine`) is an edge to its
//! `mod.rs`, whose own `pub use` lines are edges to its children. So an import through a folder's public face from
//! inside that folder shows up as a cycle: inside the crate, import from the file that defines the item.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A source file's module path (`compute::market::book`) → its text with test modules removed. A file that is
/// a test module of its own (declared `#[cfg(test)] #[path = "file.rs"] mod …;` beside it) is left out whole.
fn sources() -> BTreeMap<String, String> {
    let mut files = Vec::new();
    let mut stack = vec![PathBuf::from("src")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                files.push((p, text));
            }
        }
    }
    let test_files: BTreeSet<PathBuf> = files
        .iter()
        .flat_map(|(p, text)| {
            let dir = p.parent().unwrap().to_path_buf();
            text.split("#[cfg(test)]\n#[path = \"")
                .skip(1)
                .filter_map(move |rest| rest.split('"').next().map(|f| dir.join(f)))
                .collect::<Vec<_>>()
        })
        .collect();
    files
        .into_iter()
        .filter(|(p, _)| !test_files.contains(p))
        .map(|(p, text)| (module_of(&p), strip_tests(&text)))
        .collect()
}

fn module_of(p: &Path) -> String {
    let rel = p.strip_prefix("src").unwrap().with_extension("");
    let parts: Vec<String> = rel.iter().map(|s| s.to_string_lossy().into_owned()).collect();
    match parts.last().map(String::as_str) {
        Some("mod") | Some("lib") => parts[..parts.len() - 1].join("::"),
        Some("main") => "main".into(),
        _ => parts.join("::"),
    }
}

/// The text before the first `#[cfg(test)]` module (test modules sit at the end of each file; a single
/// `#[cfg(test)]` function or method elsewhere stays in, and is checked like the rest).
fn strip_tests(text: &str) -> String {
    let module = text
        .match_indices("#[cfg(test)]")
        .find(|(i, m)| text[i + m.len()..].trim_start().starts_with("mod ") && (*i == 0 || text[..*i].ends_with('\n')));
    match module {
        Some((i, _)) => text[..i].to_owned(),
        None => text.to_owned(),
    }
}

/// Paths that start at `crate::`, `super::` or `self::`, resolved to absolute segment lists.
fn paths_in(module: &str, text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let own: Vec<&str> = if module.is_empty() { vec![] } else { module.split("::").collect() };
    let is_folder_module =
        |m: &str| m.is_empty() || Path::new("src").join(m.replace("::", "/")).join("mod.rs").exists();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        for (i, _) in code.match_indices("::") {
            let start = code[..i].rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).map_or(0, |k| k + 1);
            if start < code.len() && code[start..i].contains("::") {
                continue; // Not the first segment of this path.
            }
            let head = &code[start..i];
            let rest: Vec<String> = code[i + 2..]
                .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .next()
                .unwrap_or("")
                .split("::")
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
            let base: Vec<String> = match head {
                "crate" => vec![],
                "rusto" if module == "main" => vec![],
                "self" if is_folder_module(module) => own.iter().map(|s| s.to_string()).collect(),
                "self" => own[..own.len().saturating_sub(1)].iter().map(|s| s.to_string()).collect(),
                "super" if is_folder_module(module) => {
                    own[..own.len().saturating_sub(1)].iter().map(|s| s.to_string()).collect()
                }
                "super" => own[..own.len().saturating_sub(2)].iter().map(|s| s.to_string()).collect(),
                _ => continue,
            };
            out.push(base.into_iter().chain(rest).collect());
        }
    }
    out
}

/// `module` → the modules (files) it uses.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = sources();
    let mut g = BTreeMap::new();
    for (m, text) in &src {
        let mut deps = BTreeSet::new();
        for path in paths_in(m, text) {
            // The deepest prefix that is a file.
            let target = (0..=path.len()).rev().map(|k| path[..k].join("::")).find(|p| src.contains_key(p));
            if let Some(t) = target
                && t != *m
                && !t.is_empty()
            {
                deps.insert(t);
            }
        }
        // A folder's `pub mod child;` lines declare, they do not use; `pub use child::X` lines are edges (above).
        g.insert(m.clone(), deps);
    }
    g
}

fn layer(m: &str) -> &str {
    m.split("::").next().unwrap_or("")
}

fn violations(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let forbidden = |from: &str, to: &str| -> Option<&'static str> {
        let (a, b) = (layer(from), layer(to));
        if a == b {
            return None;
        }
        match a {
            "types" => Some("types/ imports nothing from the crate"),
            "handoff" if b != "types" => Some("handoff/ imports only types/"),
            "compute" if matches!(b, "ingest" | "persist" | "recording" | "app" | "report") => {
                Some("compute/ never imports ingest/, persist/, recording/, app/ or report/")
            }
            "ingest" | "persist" if b == "compute" => Some("ingest/ and persist/ never import compute/"),
            _ if b == "app" && from != "main" => Some("nothing imports app/ except main.rs"),
            _ => None,
        }
    };
    let mut out = Vec::new();
    for (from, deps) in g {
        for to in deps {
            if let Some(rule) = forbidden(from, to) {
                out.push(format!("{from} → {to}: {rule}"));
            }
        }
    }
    out
}

/// Every cycle's files, one strongly connected component (Tarjan) of more than one file per entry.
fn cycles(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct T<'a> {
        g: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a str) {
        let i = t.index.len();
        t.index.insert(v, i);
        t.low.insert(v, i);
        t.stack.push(v);
        t.on.insert(v);
        for w in t.g.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !t.index.contains_key(w) {
                visit(t, w);
                let lw = t.low[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if t.on.contains(w) {
                let iw = t.index[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                comp.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                t.out.push(comp);
            }
        }
    }
    let mut t = T { g, index: BTreeMap::new(), low: BTreeMap::new(), stack: vec![], on: BTreeSet::new(), out: vec![] };
    for v in g.keys() {
        if !t.index.contains_key(v.as_str()) {
            visit(&mut t, v);
        }
    }
    t.out
}

#[test]
fn layers_import_only_what_they_may() {
    let v = violations(&graph());
    assert!(v.is_empty(), "layering violations:\n{}", v.join("\n"));
}

#[test]
fn no_import_cycle_between_files() {
    let c = cycles(&graph());
    assert!(c.is_empty(), "import cycles:\n{}", c.iter().map(|c| c.join(" ⇄ ")).collect::<Vec<_>>().join("\n"));
}

#[test]
fn the_checker_sees_what_it_checks() {
    // The graph has every layer and real edges, so an empty violation list means something.
    let g = graph();
    for l in ["types", "handoff", "ingest", "compute", "persist", "recording", "app", "report"] {
        assert!(g.keys().any(|m| layer(m) == l), "no module in {l}/");
    }
    assert!(g["compute::engine"].contains("compute::market::book"), "{:?}", g["compute::engine"]);
    assert!(g["main"].iter().any(|m| layer(m) == "app"));
    // A hand-made violation and cycle are found.
    let mut bad = g.clone();
    bad.get_mut("types::clock").unwrap().insert("compute::engine".into());
    assert!(!violations(&bad).is_empty());
    assert!(!cycles(&bad).is_empty());
}

/// True when `line` (trimmed) starts a function: `fn` after any visibility (`pub`, `pub(…)`) and qualifiers
/// (`const`, `async`, `unsafe`, `extern "C"`).
fn fn_item(line: &str) -> bool {
    let mut rest = line;
    loop {
        let word_end = rest.find([' ', '(']).unwrap_or(rest.len());
        let word = &rest[..word_end];
        let after = &rest[word_end..];
        match word {
            "fn" => return after.starts_with(' '),
            "pub" if after.starts_with('(') => match after.find(')') {
                Some(k) => rest = after[k + 1..].trim_start(),
                None => return false,
            },
            "pub" | "const" | "async" | "unsafe" | "extern" | "\"C\"" => rest = after.trim_start(),
            _ => return false,
        }
    }
}

/// Functions (outside test modules) longer than `max` lines, as `file:line name (n lines)`.
fn long_functions(max: usize) -> Vec<String> {
    let mut out = Vec::new();
    for (module, text) in sources() {
        let lines: Vec<&str> = text.lines().collect();
        let mut i = 0;
        while i < lines.len() {
            let l = lines[i];
            let indent = l.len() - l.trim_start().len();
            let t = l.trim_start();
            let is_fn = fn_item(t);
            if is_fn && !t.ends_with(';') {
                let close = format!("{}}}", " ".repeat(indent));
                let end = (i..lines.len()).find(|&j| lines[j] == close).unwrap_or(lines.len() - 1);
                let n = end - i + 1;
                if n > max {
                    let name = t.split("fn ").nth(1).unwrap_or("").split(['(', '<']).next().unwrap_or("");
                    out.push(format!("{module}:{} {name} ({n} lines)", i + 1));
                }
                i = end;
            }
            i += 1;
        }
    }
    out
}

#[test]
fn no_function_over_100_lines() {
    let long = long_functions(100);
    assert!(long.is_empty(), "functions over 100 lines (aim for 70):\n{}", long.join("\n"));
    // The scanner finds functions: the longest one is still over 40 lines somewhere in the crate.
    assert!(!long_functions(40).is_empty());
}

/// Files below the crate root that declare a `pub mod` (their submodules should be crate-private, shown through
/// the folder's `pub use` lines).
fn public_submodules() -> Vec<String> {
    let mut out = Vec::new();
    for (module, text) in sources() {
        if module.is_empty() {
            continue; // lib.rs: the layers themselves are the crate's public modules.
        }
        for (n, line) in text.lines().enumerate() {
            // File modules only (`pub mod x;`); an inline `pub mod flags { … }` is vocabulary, not a file.
            if line.trim_start().starts_with("pub mod ") && line.trim_end().ends_with(';') {
                out.push(format!("{module}:{} {}", n + 1, line.trim()));
            }
        }
    }
    out
}

#[test]
fn folders_show_their_public_face_through_mod_rs() {
    let public = public_submodules();
    assert!(
        public.is_empty(),
        "submodules must be pub(crate) or private, re-exported by `pub use`:\n{}",
        public.join("\n")
    );
    // The crate root's layers are found, so the scan reads what it checks.
    let root = sources().remove("").unwrap();
    assert!(root.lines().any(|l| l.starts_with("pub mod compute;")));
    assert!(sources()["compute"].contains("pub use engine::"));
}

#[test]
fn the_function_scanner_sees_every_qualified_fn() {
    for l in ["fn a() {", "pub fn a() {", "pub(crate) const fn a() {", "pub(super) unsafe fn a() {", "async fn a() {"] {
        assert!(fn_item(l), "{l}");
    }
    for l in ["let fnx = 1;", "pub struct F {", "// fn a", "pub(crate) mod fnord;"] {
        assert!(!fn_item(l), "{l}");
    }
}
