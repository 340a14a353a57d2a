//! The library's floors only point down, and no files import each other in a circle.
//!
//! Reads the `use` lines and inline `crate::`/`super::` paths of every file under `src/`
//! (test modules, comments and string literals left out) and checks them against the
//! floors of `../shared/DESIGN.md`:
//!
//! ```text
//! models                 models/
//! nn / optim / io        nn/, optim/, io/
//! func                   func/
//! ops                    ops/, einsum/          (einsum is an op family)
//! autograd               autograd/              (rules, recording, engine, modes)
//! tensor                 tensor/                (Tensor and the graph node it carries)
//! kernels                kernels/               (buffers and layouts in, buffers out)
//! base                   dtype, error, layout, storage
//! ```
//!
//! A facade's re-exports (`pub use` in `lib.rs` or a `mod.rs`) are the module's public face,
//! not a dependency, and are not counted; a path through a crate-root re-export
//! (`crate::Tensor`) counts as an import of the module that defines it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The floor of a file, by its first path component under `src/` (`None`: the crate root).
fn floor_of(file: &str) -> Option<(usize, &'static str)> {
    let top = file
        .trim_start_matches("src/")
        .split('/')
        .next()
        .unwrap_or("")
        .trim_end_matches(".rs");
    Some(match top {
        "dtype" | "error" | "layout" | "storage" => (0, "base"),
        "kernels" => (1, "kernels"),
        "tensor" => (2, "tensor"),
        "autograd" => (3, "autograd"),
        "ops" | "einsum" => (4, "ops"),
        "func" => (5, "func"),
        "nn" | "optim" | "io" => (6, "nn/optim/io"),
        "models" => (7, "models"),
        _ => return None,
    })
}

/// Source files under `src/`, by path relative to the crate root.
fn sources() -> BTreeMap<String, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = BTreeMap::new();
    let mut dirs = vec![root.join("src")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let rel = p
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(rel, std::fs::read_to_string(&p).unwrap());
            }
        }
    }
    out
}

/// `src` without comments, string and char literals, and the trailing test module.
fn code_only(src: &str) -> String {
    let src = match src.find("#[cfg(test)]\nmod ") {
        Some(i) => &src[..i],
        None => src,
    };
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                out.push_str("\"\"");
            }
            b'\'' if b.get(i + 2) == Some(&b'\'') || (b.get(i + 1) == Some(&b'\\')) => {
                // a char literal ('x' or '\n', '\u{..}'); lifetimes ('a) are left alone
                i += 1;
                while i < b.len() && b[i] != b'\'' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            c => {
                out.push(c as char);
                i += 1;
            }
        }
    }
    out
}

/// The module path (`["ops", "binary"]`) of a file.
fn module_of(file: &str) -> Vec<String> {
    let rel = file.trim_start_matches("src/").trim_end_matches(".rs");
    let mut parts: Vec<String> = rel.split('/').map(str::to_string).collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

/// The file that defines module path `m` (its longest prefix that is a file).
fn file_of(m: &[String], files: &BTreeMap<String, String>) -> Option<String> {
    for n in (1..=m.len()).rev() {
        let base = m[..n].join("/");
        for cand in [format!("src/{base}.rs"), format!("src/{base}/mod.rs")] {
            if files.contains_key(&cand) {
                return Some(cand);
            }
        }
    }
    None
}

/// The crate root's re-exports: name → the module path it comes from.
fn root_reexports(lib: &str) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for line in code_only(lib).lines() {
        let Some(rest) = line.trim().strip_prefix("pub use ") else {
            continue;
        };
        let rest = rest.trim_end_matches(';');
        let (path, names) = match rest.split_once("::{") {
            Some((p, n)) => (p, n.trim_end_matches('}').to_string()),
            None => match rest.rsplit_once("::") {
                Some((p, n)) => (p, n.to_string()),
                None => continue,
            },
        };
        for n in names.split(',') {
            let n = n.split(" as ").last().unwrap_or("").trim();
            if !n.is_empty() {
                out.insert(
                    n.to_string(),
                    path.split("::").map(str::to_string).collect(),
                );
            }
        }
    }
    out
}

/// Every module path a file's code refers to (resolved to crate-absolute form).
fn referenced_paths(file: &str, code: &str) -> Vec<Vec<String>> {
    let here = module_of(file);
    let is_facade = file.ends_with("mod.rs") || file.ends_with("lib.rs");
    let mut out = Vec::new();
    // `use` trees, expanded one level of braces deep at a time.
    let mut uses: Vec<String> = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("use ") {
        let before = &rest[..i];
        let line_start = before.rfind('\n').map_or(0, |j| j + 1);
        let prefix = before[line_start..].trim();
        let boundary = i == 0 || !rest.as_bytes()[i - 1].is_ascii_alphanumeric();
        let end = rest[i..].find(';').map_or(rest.len(), |j| i + j);
        if boundary && (prefix.is_empty() || prefix.starts_with("pub")) {
            let facade_export = is_facade && prefix.starts_with("pub");
            if !facade_export {
                let tree: Vec<&str> = rest[i + 4..end].split_whitespace().collect();
                uses.push(tree.join(" "));
            }
        }
        rest = &rest[end.min(rest.len())..];
        if rest.is_empty() {
            break;
        }
        rest = &rest[1..];
    }
    let mut expanded = Vec::new();
    while let Some(u) = uses.pop() {
        match u.find('{') {
            Some(open) => {
                let close = u.rfind('}').unwrap_or(u.len());
                let (head, inner) = (&u[..open], &u[open + 1..close]);
                let mut depth = 0;
                let mut item = String::new();
                for c in inner.chars().chain(std::iter::once(',')) {
                    match c {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            if !item.is_empty() {
                                uses.push(format!("{head}{item}"));
                            }
                            item.clear();
                            continue;
                        }
                        _ => {}
                    }
                    item.push(c);
                }
            }
            None => expanded.push(u),
        }
    }
    // Inline paths.
    let bytes = code.as_bytes();
    for start in ["crate::", "super::", "self::"] {
        for (i, _) in code.match_indices(start) {
            if i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_') {
                continue;
            }
            let path: String = code[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            expanded.push(path);
        }
    }
    for p in expanded {
        let p: String = p.split(" as ").next().unwrap_or("").replace(' ', "");
        let mut segs: Vec<&str> = p.split("::").filter(|s| !s.is_empty()).collect();
        let mut abs: Vec<String> = match segs.first() {
            Some(&"crate") | Some(&"$crate") => {
                segs.remove(0);
                Vec::new()
            }
            Some(&"super") => {
                let mut base = here.clone();
                while segs.first() == Some(&"super") {
                    segs.remove(0);
                    base.pop();
                }
                base
            }
            Some(&"self") => {
                segs.remove(0);
                here.clone()
            }
            _ => continue,
        };
        abs.extend(segs.iter().map(|s| s.to_string()));
        out.push(abs);
    }
    out
}

#[test]
fn floors_only_point_down_and_files_form_no_circle() {
    let files = sources();
    assert!(
        files.contains_key("src/ops/unary.rs"),
        "scanner found no sources"
    );
    let reexports = root_reexports(&files["src/lib.rs"]);
    let mut upward = Vec::new();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (file, src) in &files {
        let Some((floor, floor_name)) = floor_of(file) else {
            continue;
        };
        let code = code_only(src);
        for mut path in referenced_paths(file, &code) {
            if let Some(first) = path.first() {
                if let Some(real) = reexports.get(first) {
                    path = real
                        .iter()
                        .cloned()
                        .chain(path[1..].iter().cloned())
                        .collect();
                }
            }
            let Some(target) = file_of(&path, &files) else {
                continue;
            };
            if &target == file {
                continue;
            }
            if let Some((tf, tname)) = floor_of(&target) {
                if tf > floor {
                    upward.push(format!(
                        "{file} ({floor_name}) imports {} from {target} ({tname})",
                        path.join("::")
                    ));
                }
                graph.entry(file.clone()).or_default().insert(target);
            }
        }
    }
    upward.sort();
    upward.dedup();
    // Circles: a depth-first search for a back edge.
    let mut circles = Vec::new();
    let mut state: BTreeMap<&str, u8> = BTreeMap::new(); // 1 = on the stack, 2 = done
    fn visit<'a>(
        n: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<&'a str, u8>,
        stack: &mut Vec<&'a str>,
        circles: &mut Vec<String>,
    ) {
        state.insert(n, 1);
        stack.push(n);
        for m in graph.get(n).into_iter().flatten() {
            match state.get(m.as_str()) {
                Some(1) => {
                    let at = stack.iter().position(|s| *s == m).unwrap_or(0);
                    let mut c: Vec<&str> = stack[at..].to_vec();
                    c.push(m);
                    circles.push(c.join(" -> "));
                }
                Some(_) => {}
                None => visit(m, graph, state, stack, circles),
            }
        }
        stack.pop();
        state.insert(n, 2);
    }
    let keys: Vec<&String> = graph.keys().collect();
    for k in keys {
        if !state.contains_key(k.as_str()) {
            visit(k, &graph, &mut state, &mut Vec::new(), &mut circles);
        }
    }
    assert!(
        upward.is_empty() && circles.is_empty(),
        "imports from a higher floor:\n  {}\ncircles of files:\n  {}",
        upward.join("\n  "),
        circles.join("\n  ")
    );
}

/// The scanner sees what it must: an upward import and a circle planted in fake sources.
#[test]
fn the_scanner_finds_planted_violations() {
    let code = code_only("use crate::ops::binary::x; // crate::models::y\nlet s = \"crate::func::z\";\nfn f() { super::map1!(); crate::autograd::record1(); }\n#[cfg(test)]\nmod tests { use crate::models::q; }\n");
    let paths = referenced_paths("src/kernels/elementwise.rs", &code);
    let joined: Vec<String> = paths.iter().map(|p| p.join("::")).collect();
    assert!(joined.contains(&"ops::binary::x".to_string()), "{joined:?}");
    assert!(
        joined.contains(&"autograd::record1".to_string()),
        "{joined:?}"
    );
    assert!(joined.contains(&"kernels::map1".to_string()), "{joined:?}");
    assert!(
        !joined
            .iter()
            .any(|p| p.starts_with("models") || p.starts_with("func")),
        "{joined:?}"
    );
    let grouped = referenced_paths(
        "src/ops/mod.rs",
        "use super::{tensor::{Tensor, X}, layout};",
    );
    let joined: Vec<String> = grouped.iter().map(|p| p.join("::")).collect();
    assert!(joined.contains(&"tensor::Tensor".to_string()), "{joined:?}");
    assert!(joined.contains(&"layout".to_string()), "{joined:?}");
    assert_eq!(floor_of("src/einsum/plan.rs"), Some((4, "ops")));
    assert_eq!(floor_of("src/lib.rs"), None);
}
