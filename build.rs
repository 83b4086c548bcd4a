//! Build script: compiles the C log shim into the library, and checks the
//! C surface: cbindgen (pinned) generates the prototypes of our
//! `extern "C"` functions, which must equal the hand-written public headers
//! (the contract) and the exported-symbol list of `src/ffi/xenlight.map`.
//! Any drift fails the build with the differing prototypes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn main() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    for f in ["src/ffi/log_shim.c", "include", "libxl_event.h", "src/ffi", "src/ffi/xenlight.map"] {
        println!("cargo:rerun-if-changed={f}");
    }
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libxenlight.so.4.17");
    cc::Build::new()
        .file("src/ffi/log_shim.c")
        .include("include")
        .warnings(true)
        .extra_warnings(true)
        .compile("xl_log_shim");
    check_c_surface(&dir);
}

fn check_c_surface(dir: &Path) {
    let mut cfg = cbindgen::Config { language: cbindgen::Language::C, ..Default::default() };
    cfg.export.rename.insert("timeval".into(), "struct timeval".into());
    cfg.export.rename.insert("pollfd".into(), "struct pollfd".into());
    cfg.export.rename.insert("Carefd".into(), "libxl__carefd".into());
    cfg.parse.parse_deps = false;
    cfg.style = cbindgen::Style::Type;
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("cbindgen.h");
    let bindings = match cbindgen::Builder::new().with_crate(dir).with_config(cfg).generate() {
        Ok(b) => b,
        Err(e) => panic!("cbindgen could not parse the crate: {e}"),
    };
    bindings.write_to_file(&out);
    let ours = prototypes(&std::fs::read_to_string(&out).unwrap());

    let mut headers = String::new();
    let mut include: Vec<PathBuf> = std::fs::read_dir(dir.join("include"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "h"))
        .collect();
    include.sort(); // the same result whatever the directory order
    for h in std::iter::once(dir.join("libxl_event.h")).chain(include) {
        headers.push_str(&std::fs::read_to_string(h).unwrap());
        headers.push('\n');
    }
    let theirs = prototypes(&headers);

    // libxl's internal API (`libxl__*`, src/ffi/internal, built for
    // `make xen`) is declared by Xen's own libxl_internal.h, not by our
    // public headers: `make xen` checks those prototypes against it.
    // Functions we import (`extern "C"` blocks, printed `extern`) are not ours.
    let ours: BTreeMap<String, String> =
        ours.into_iter().filter(|(n, p)| !n.starts_with("libxl__") && !p.starts_with("extern ")).collect();
    let mut errors = Vec::new();
    for (name, proto) in &ours {
        match theirs.get(name) {
            None => errors.push(format!("{name}: exported by Rust but declared in no public header\n  rust:   {proto}")),
            Some(h) if h != proto => errors.push(format!("{name}: prototypes differ\n  header: {h}\n  rust:   {proto}")),
            Some(_) => {}
        }
    }
    let map = std::fs::read_to_string(dir.join("src/ffi/xenlight.map")).unwrap();
    let mapped: Vec<&str> = map
        .lines()
        .map(str::trim)
        .filter(|l| l.ends_with(';') && l.starts_with("libxl_"))
        .map(|l| l.trim_end_matches(';'))
        .collect();
    for name in ours.keys() {
        if !mapped.contains(&name.as_str()) {
            errors.push(format!("{name}: exported by Rust but missing from src/ffi/xenlight.map"));
        }
    }
    for name in &mapped {
        if !ours.contains_key(*name) {
            errors.push(format!("{name}: listed in src/ffi/xenlight.map but not implemented in Rust"));
        }
    }
    if !errors.is_empty() {
        panic!("C surface check failed (headers are the contract):\n{}", errors.join("\n"));
    }
    let missing: Vec<&String> = theirs.keys().filter(|n| n.starts_with("libxl_") && !ours.contains_key(*n)).collect();
    std::fs::write(
        PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("not-implemented.txt"),
        missing.iter().map(|s| format!("{s}\n")).collect::<String>(),
    )
    .unwrap();
}

/// name -> normalised prototype, for every `libxl_*` function declared.
fn prototypes(text: &str) -> BTreeMap<String, String> {
    let text = strip_preprocessor(&strip_comments(text)).replace("LIBXL_EXTERNAL_CALLERS_ONLY", " ");
    let text = strip_attributes(&text);
    let mut out = BTreeMap::new();
    // Declarations end at ';' outside braces/parens; look at each one.
    let mut depth = 0i32;
    let mut cur = String::new();
    for ch in text.chars() {
        match ch {
            '{' => {
                depth += 1;
                cur.clear();
            }
            '}' => {
                depth -= 1;
                cur.clear();
            }
            ';' if depth == 0 => {
                if let Some((name, p)) = parse_decl(&cur) {
                    // An import (`extern`) never hides a definition.
                    if !(p.starts_with("extern ") && out.contains_key(&name)) {
                        out.insert(name, p);
                    }
                }
                cur.clear();
            }
            '#' => cur.push('#'),
            _ => cur.push(ch),
        }
    }
    out
}

fn parse_decl(decl: &str) -> Option<(String, String)> {
    let decl: String = decl.lines().filter(|l| !l.trim_start().starts_with('#')).collect::<Vec<_>>().join(" ");
    let decl = decl.trim();
    if decl.starts_with("typedef") || decl.starts_with("extern \"C\"") {
        return None;
    }
    let open = decl.find('(')?;
    let close = decl.rfind(')')?;
    let head = decl[..open].trim();
    let name = head.rsplit(|c: char| !(c.is_alphanumeric() || c == '_')).next()?.to_string();
    if !name.starts_with("libxl_") || name.starts_with("libxl__") {
        return None;
    }
    let ret = norm_type(&head[..head.len() - name.len()]);
    let params: Vec<String> = split_top_level(&decl[open + 1..close])
        .iter()
        .map(|p| norm_param(p))
        .filter(|p| !p.is_empty() && p != "void")
        .collect();
    Some((name.clone(), format!("{ret} {name}({})", params.join(", "))))
}

fn tokens(s: &str) -> Vec<String> {
    s.replace('*', " * ").split_whitespace().map(str::to_string).collect()
}

const TYPE_WORDS: [&str; 9] = ["int", "char", "short", "long", "unsigned", "signed", "void", "double", "float"];

fn split_top_level(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth) = (Vec::new(), String::new(), 0);
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out
}

fn norm_param(p: &str) -> String {
    // A function-pointer parameter: drop its name, normalise its parameters.
    if let (Some(a), Some(b)) = (p.find("(*"), p.find(')')) {
        let ret = norm_type(&p[..a]);
        let rest = &p[b + 1..];
        let inner = rest.trim().trim_start_matches('(').trim_end_matches(')');
        let ps: Vec<String> = split_top_level(inner).iter().map(|x| norm_param(x)).collect();
        return format!("{ret} (*)({})", ps.join(", "));
    }
    let mut t = tokens(p);
    if t.len() >= 2 {
        let last = t.last().unwrap();
        let prev = &t[t.len() - 2];
        let is_ident = last.chars().all(|c| c.is_alphanumeric() || c == '_');
        let is_type = TYPE_WORDS.contains(&last.as_str()) || last.ends_with("_t") || last.starts_with("libxl_");
        if is_ident && !is_type && !["struct", "enum", "union"].contains(&prev.as_str()) {
            t.pop();
        }
    }
    norm_type(&t.join(" "))
}

fn norm_type(t: &str) -> String {
    let s = tokens(t).join(" ");
    let s = if s == "unsigned" { "unsigned int".to_string() } else { s };
    // A C function typedef used through a pointer is, to cbindgen, the
    // Rust fn-pointer typedef itself.
    s.replace("libxl_event_predicate *", "int (*)(const libxl_event *, void *)")
}

/// Drops preprocessor directives (with their backslash-continued lines, so
/// a multi-line macro body cannot unbalance the braces), and the C++
/// guards they enclose.
fn strip_preprocessor(s: &str) -> String {
    let mut out = String::new();
    let mut in_cplusplus = false;
    let mut continued = false;
    for line in s.lines() {
        let t = line.trim_start();
        let continuation = continued;
        continued = (continuation || t.starts_with('#')) && line.trim_end().ends_with('\\');
        if continuation {
            continue;
        }
        if t.starts_with("#ifdef __cplusplus") {
            in_cplusplus = true;
            continue;
        }
        if in_cplusplus {
            if t.starts_with("#endif") {
                in_cplusplus = false;
            }
            continue;
        }
        if t.starts_with('#') {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn strip_comments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'/' && i + 1 < b.len() && b[i + 1] == b'*' {
            i += 2;
            while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                i += 1;
            }
            i += 2;
            out.push(' ');
        } else if b[i] == b'/' && i + 1 < b.len() && b[i + 1] == b'/' {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

fn strip_attributes(s: &str) -> String {
    let mut out = s.to_string();
    while let Some(start) = out.find("__attribute__") {
        let mut depth = 0;
        let mut end = start;
        for (i, c) in out[start..].char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = start + i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        out.replace_range(start..end, " ");
    }
    out
}
