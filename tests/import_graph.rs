//! The core's dependencies run one way (docs/design.md, "Layers"):
//!
//!   ffi, testops  →  egc (the guard and its verbs)  →  reg (registries)
//!                 →  token, rc, log, fasthash, sys
//!
//! This test reads every source file, takes each module's references to
//! other modules (`crate::a::b`, `super::x`, `self::x`), and checks that
//! no module depends on a layer above its own, and that the only import
//! circle is inside `egc`: the guard and its verbs are one type split over
//! files by source kind, and a handler takes the egc (`&mut Egc`) while the
//! state the egc guards holds the handlers — the callback loop of an event
//! core. Nothing else may form a circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path (`reg::ao::index`) of a source file.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if parts.last().map(String::as_str) == Some("mod") || parts.last().map(String::as_str) == Some("lib") {
        parts.pop();
    }
    parts.join("::")
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Production code: without comments (line comments only: the sources use
/// no block comments) and without the unit tests at the end of a file
/// (tests may drive verbs through a test operation).
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
    text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// Test-only modules (whole files).
fn test_only(m: &str) -> bool {
    m == "testutil" || m.ends_with("_tests")
}

/// Resolves `super` and `self` segments inside a path.
fn normalize(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in path.split("::") {
        match seg {
            "super" => {
                out.pop();
            }
            "self" | "" => {}
            s => out.push(s),
        }
    }
    out.join("::")
}

/// The longest known module that `path` (a `::`-joined path) starts with.
fn resolve(path: &str, modules: &BTreeSet<String>) -> Option<String> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len()).rev().map(|n| parts[..n].join("::")).find(|m| modules.contains(m))
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut fs = Vec::new();
    files(&src, &mut fs);
    let modules: BTreeSet<String> = fs.iter().map(|f| module_of(&src, f)).collect();
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let ident = |s: &str| s.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect::<String>();
    for f in &fs {
        let m = module_of(&src, f);
        if test_only(&m) {
            continue;
        }
        let text = code(&std::fs::read_to_string(f).unwrap());
        let parent = m.rsplit_once("::").map_or(String::new(), |(p, _)| p.to_string());
        let mut deps = BTreeSet::new();
        for (prefix, base) in [("crate::", String::new()), ("super::", parent.clone()), ("self::", m.clone())] {
            for (i, _) in text.match_indices(prefix) {
                let before = text[..i].chars().last();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                    continue;
                }
                let rest = ident(&text[i + prefix.len()..]);
                let full = if base.is_empty() { rest } else { format!("{base}::{rest}") };
                // `use x::{a, b}`: the braces name items of x (or its submodules).
                let full = normalize(full.trim_end_matches(':'));
                if let Some(t) = resolve(&full, &modules) {
                    // The crate root only declares modules and re-exports
                    // the logging macros.
                    if !t.is_empty() && t != m && !test_only(&t) {
                        deps.insert(t);
                    }
                }
            }
        }
        g.insert(m, deps);
    }
    g
}

fn layer(m: &str) -> u32 {
    match m.split("::").next().unwrap() {
        "ffi" | "testops" | "" => 3,
        "egc" | "testutil" => 2,
        "reg" => 1,
        _ => 0, // token, rc, log, fasthash, sys
    }
}

#[test]
fn dependencies_run_one_way() {
    let g = graph();
    let mut bad = Vec::new();
    for (m, deps) in &g {
        for d in deps {
            if layer(d) > layer(m) {
                bad.push(format!("{m} -> {d}"));
            }
        }
    }
    assert!(bad.is_empty(), "modules depending on a layer above their own:\n{}", bad.join("\n"));
}

/// Strongly connected components (Tarjan), those with more than one module.
fn circles(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct T<'a> {
        g: &'a BTreeMap<String, BTreeSet<String>>,
        idx: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a str) {
        let i = t.idx.len();
        t.idx.insert(v, i);
        t.low.insert(v, i);
        t.stack.push(v);
        t.on.insert(v);
        for w in t.g.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !t.g.contains_key(w) {
                continue;
            }
            if !t.idx.contains_key(w) {
                visit(t, w);
                let lw = t.low[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if t.on.contains(w) {
                let iw = t.idx[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.idx[v] {
            let mut c = Vec::new();
            loop {
                let w = t.stack.pop().unwrap();
                t.on.remove(w);
                c.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if c.len() > 1 {
                c.sort();
                t.out.push(c);
            }
        }
    }
    let mut t = T { g, idx: BTreeMap::new(), low: BTreeMap::new(), stack: Vec::new(), on: BTreeSet::new(), out: Vec::new() };
    for v in g.keys() {
        if !t.idx.contains_key(v.as_str()) {
            visit(&mut t, v);
        }
    }
    t.out
}

#[test]
fn the_only_import_circle_is_inside_the_orchestration_layer() {
    let g = graph();
    for c in circles(&g) {
        assert!(
            c.iter().all(|m| m == "egc" || m.starts_with("egc::")),
            "an import circle outside egc: {c:?}"
        );
    }
}

/// The check itself sees a circle where there is one (negative control).
#[test]
fn the_check_finds_a_circle() {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    g.insert("reg::a".into(), ["reg::b".to_string()].into());
    g.insert("reg::b".into(), ["reg::a".to_string()].into());
    g.insert("rc".into(), BTreeSet::new());
    assert_eq!(circles(&g), vec![vec!["reg::a".to_string(), "reg::b".to_string()]]);
    assert!(graph().get("egc::fd").is_some_and(|d| d.contains("reg::ao")), "the real graph is read");
}
