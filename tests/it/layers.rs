//! The import graph of `src/`, read from the code as text: no files import each other through
//! any chain, and each layer imports only from the layers below it (the README's Architecture
//! section); the engine and data layers name no web or async crate. An import is a `use` path or
//! a `crate::`, `super::` or `self::` path in the code (test modules and comments left out); a
//! name taken from a folder's `mod.rs` (or `lib.rs`) counts as taken from the file that
//! defines it when the face only re-exports it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The top-level modules, top layer first: a file may import from its own top-level module and
/// from the layers after its own.
const LAYERS: &[&[&str]] = &[
    &["cli"],
    &["http"],
    &["serving"],
    &["config"],
    &["eval"],
    &["select"],
    &["score"],
    &["onboard"],
    &["predictor"],
    &["mfa"],
    &["plsa"],
    &["mixture"],
    &["data", "synth", "linalg", "simd"],
];

/// Modules that must not name a web or async crate, and those crates.
const NO_WEB: &[&str] = &[
    "data",
    "linalg",
    "simd",
    "mixture",
    "plsa",
    "mfa",
    "predictor",
    "onboard",
    "score",
    "select",
    "eval",
    "config",
    "synth",
];
const WEB: &[&str] = &[
    "axum",
    "tower",
    "tower_http",
    "hyper",
    "hyper_util",
    "tokio",
];
/// The serving layer runs jobs on tokio's blocking threads but serves nothing.
const SERVING_WEB: &[&str] = &["axum", "tower", "tower_http", "hyper", "hyper_util"];

/// Cycles known, as sorted files. Remove a row when its cycle is gone: the test then keeps it
/// gone.
const KNOWN_CYCLES: &[&[&str]] = &[
    // `mod.rs` keeps the fitted terms of `fit.rs`, which builds a `Plsa` from `mod.rs`.
    &["plsa/fit.rs", "plsa/mod.rs"],
];

/// One file of `src/`.
struct File {
    /// From `src/`, e.g. `serving/store/dir.rs`.
    path: String,
    /// Its module, e.g. `[serving, store, dir]` (`[serving]` for `serving/mod.rs`).
    module: Vec<String>,
    /// `mod.rs` or `lib.rs`: its `pub use` lines re-export, they import nothing.
    face: bool,
    /// Its `use` statements: (public, the tree after `use`).
    uses: Vec<(bool, String)>,
    /// The rest of its code.
    rest: String,
}

fn files() -> Vec<File> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut paths = Vec::new();
    walk(&root, &mut paths);
    let mut files = Vec::new();
    for p in paths {
        let path = p
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if path == "main.rs" {
            continue; // the binary: not part of the library's graph
        }
        let mut module: Vec<String> = path
            .trim_end_matches(".rs")
            .split('/')
            .map(String::from)
            .collect();
        let face = matches!(module.last().map(String::as_str), Some("mod" | "lib"));
        if face {
            module.pop();
        }
        let (uses, rest) = split_uses(&code_of(&std::fs::read_to_string(&p).unwrap()));
        files.push(File {
            path,
            module,
            face,
            uses,
            rest,
        });
    }
    files
}

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code without its test module (a `#[cfg(test)]` line before `mod`) and comments.
fn code_of(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let tests = (0..lines.len()).find(|&i| {
        lines[i].trim() == "#[cfg(test)]"
            && lines
                .get(i + 1)
                .is_some_and(|l| l.trim_start().starts_with("mod "))
    });
    let lines = &lines[..tests.unwrap_or(lines.len())];
    let uncommented: Vec<&str> = lines
        .iter()
        .map(|l| l.find("//").map_or(*l, |at| &l[..at]))
        .collect();
    uncommented.join("\n")
}

/// The `use` statements (public or not, with the tree they name) and the code around them.
fn split_uses(code: &str) -> (Vec<(bool, String)>, String) {
    let (mut uses, mut rest) = (Vec::new(), String::new());
    let mut lines = code.lines();
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        let (public, after) = if let Some(a) = t.strip_prefix("use ") {
            (false, a)
        } else if let Some(a) = t.strip_prefix("pub use ").or_else(|| pub_restricted_use(t)) {
            (true, a)
        } else {
            rest.push_str(line);
            rest.push('\n');
            continue;
        };
        let mut tree = after.to_owned();
        while !tree.contains(';') {
            tree.push(' ');
            tree.push_str(lines.next().expect("a use statement ends"));
        }
        let tree = tree[..tree.find(';').unwrap()].to_owned();
        uses.push((public, tree));
    }
    (uses, rest)
}

/// `pub(crate) use …` and the like.
fn pub_restricted_use(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("pub(")?;
    rest[rest.find(')')? + 1..]
        .trim_start()
        .strip_prefix("use ")
}

/// Every path a `use` tree names, braces expanded, with the name each binds.
fn expand(tree: &str) -> Vec<(Vec<String>, String)> {
    let tree = tree.replace(" as ", "@");
    let tree: String = tree.split_whitespace().collect();
    let mut out = Vec::new();
    expand_into(&tree, &mut Vec::new(), &mut out);
    out
}

fn expand_into(tree: &str, prefix: &mut Vec<String>, out: &mut Vec<(Vec<String>, String)>) {
    let depth = prefix.len();
    if let Some(open) = tree.find('{') {
        prefix.extend(segments(&tree[..open]));
        for part in split_top(&tree[open + 1..tree.len() - 1]) {
            expand_into(part, prefix, out);
        }
    } else {
        let (path, alias) = tree
            .split_once('@')
            .map_or((tree, None), |(p, a)| (p, Some(a)));
        prefix.extend(segments(path));
        let mut full = prefix.clone();
        if full.last().is_some_and(|s| s == "self") {
            full.pop();
        }
        if let Some(last) = full.last() {
            out.push((full.clone(), alias.unwrap_or(last).to_owned()));
        }
    }
    prefix.truncate(depth);
}

fn segments(path: &str) -> impl Iterator<Item = String> + '_ {
    path.split("::")
        .filter(|s| !s.is_empty() && *s != "*")
        .map(String::from)
}

/// `a, b::{c, d}, e` split at the commas outside braces.
fn split_top(s: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts.into_iter().filter(|p| !p.is_empty()).collect()
}

/// Every path of two segments or more in `code` (`a::b`, `crate::a::B::c`).
fn inline_paths(code: &str) -> Vec<Vec<String>> {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = code[from..].find("::") {
        let sep = from + at;
        let start = code[..sep].rfind(|c: char| !ident(c)).map_or(0, |i| i + 1);
        let tail = &code[start..];
        let end = tail
            .find(|c: char| !(ident(c) || c == ':'))
            .unwrap_or(tail.len());
        from = start + end.max(sep - start + 2);
        let before = code[..start].chars().next_back();
        if start == sep || before.is_some_and(|c| c == ':') {
            continue; // `::x` or the middle of a path already read
        }
        out.push(segments(&tail[..end]).collect());
    }
    out
}

/// The module graph: which file each module is, and what each face re-exports.
struct Modules<'a> {
    files: &'a [File],
    by_module: BTreeMap<Vec<String>, usize>,
    /// For each face: re-exported name → the absolute path it names.
    exports: BTreeMap<usize, BTreeMap<String, Vec<String>>>,
}

impl<'a> Modules<'a> {
    fn new(files: &'a [File]) -> Self {
        let by_module = files
            .iter()
            .enumerate()
            .map(|(i, f)| (f.module.clone(), i))
            .collect();
        let mut m = Self {
            files,
            by_module,
            exports: BTreeMap::new(),
        };
        for (i, f) in files.iter().enumerate().filter(|(_, f)| f.face) {
            let mut names = BTreeMap::new();
            for (_, tree) in f.uses.iter().filter(|u| u.0) {
                for (path, name) in expand(tree) {
                    if let Some(abs) = m.absolute(&f.module, true, &path) {
                        names.insert(name, abs);
                    }
                }
            }
            m.exports.insert(i, names);
        }
        m
    }

    /// `path` as written in a file of module `base` (a face's when `face`), from the crate root;
    /// `None` for another crate.
    fn absolute(&self, base: &[String], face: bool, path: &[String]) -> Option<Vec<String>> {
        let mut here: Vec<String> = base.to_vec();
        let mut rest = path;
        match rest.first().map(String::as_str) {
            Some("crate") => {
                here.clear();
                rest = &rest[1..];
            }
            Some("self") => rest = &rest[1..],
            Some("super") => {
                // In `a/b.rs` (module a::b) `super` is `a`; in `a/mod.rs` (module a) it is the root.
                while rest.first().is_some_and(|s| s == "super") {
                    here.pop();
                    rest = &rest[1..];
                }
            }
            Some(first) => {
                // A child module named in its parent (`use codec::Layout;` in a `mod.rs`).
                let mut child = base.to_vec();
                child.push(first.to_owned());
                if !self.by_module.contains_key(&child) {
                    return None;
                }
            }
            None => return None,
        }
        let _ = face;
        here.extend(rest.iter().cloned());
        Some(here)
    }

    /// The file an absolute path leads to, through the re-exports of faces.
    fn target(&self, abs: &[String], hops: usize) -> Option<usize> {
        let (len, &file) = (0..=abs.len())
            .rev()
            .find_map(|n| self.by_module.get(&abs[..n]).map(|f| (n, f)))?;
        if hops < 8
            && self.files[file].face
            && let Some(name) = abs.get(len)
            && let Some(next) = self.exports.get(&file).and_then(|e| e.get(name))
        {
            let mut next = next.clone();
            next.extend(abs[len + 1..].iter().cloned());
            return self.target(&next, hops + 1).or(Some(file));
        }
        Some(file)
    }

    /// The names a file's paths may start with: what its `use` lines bind, and its child
    /// modules; each with the absolute path it stands for.
    fn scope(&self, f: &File) -> BTreeMap<String, Vec<String>> {
        let mut scope: BTreeMap<String, Vec<String>> = self
            .by_module
            .keys()
            .filter(|m| m.len() == f.module.len() + 1 && m.starts_with(&f.module))
            .map(|m| (m[m.len() - 1].clone(), m.clone()))
            .collect();
        for (_, tree) in &f.uses {
            for (path, name) in expand(tree) {
                if let Some(abs) = self.absolute(&f.module, f.face, &path) {
                    scope.insert(name, abs);
                }
            }
        }
        scope
    }

    /// The files file `i` imports.
    fn imports(&self, i: usize) -> BTreeSet<usize> {
        let f = &self.files[i];
        let mut paths: Vec<Vec<String>> = f
            .uses
            .iter()
            .filter(|(public, _)| !(f.face && *public))
            .flat_map(|(_, tree)| expand(tree).into_iter().map(|(p, _)| p))
            .filter_map(|p| self.absolute(&f.module, f.face, &p))
            .collect();
        let scope = self.scope(f);
        for p in inline_paths(&f.rest) {
            let abs = match p[0].as_str() {
                "crate" | "super" | "self" => self.absolute(&f.module, f.face, &p),
                first => scope.get(first).map(|base| {
                    let mut abs = base.clone();
                    abs.extend(p[1..].iter().cloned());
                    abs
                }),
            };
            paths.extend(abs);
        }
        paths
            .iter()
            .filter_map(|abs| self.target(abs, 0))
            .filter(|&t| t != i)
            .collect()
    }
}

/// The sets of files that import each other (Tarjan's strongly connected components of more
/// than one file).
fn cycles(graph: &[BTreeSet<usize>]) -> Vec<Vec<usize>> {
    struct T<'g> {
        g: &'g [BTreeSet<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        stack: Vec<usize>,
        on: Vec<bool>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    fn visit(t: &mut T<'_>, v: usize) {
        t.index[v] = Some(t.next);
        t.low[v] = t.next;
        t.next += 1;
        t.stack.push(v);
        t.on[v] = true;
        for &w in t.g[v].iter() {
            match t.index[w] {
                None => {
                    visit(t, w);
                    t.low[v] = t.low[v].min(t.low[w]);
                }
                Some(iw) if t.on[w] => t.low[v] = t.low[v].min(iw),
                Some(_) => {}
            }
        }
        if Some(t.low[v]) == t.index[v] {
            let mut scc = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on[w] = false;
                scc.push(w);
                if w == v {
                    break;
                }
            }
            if scc.len() > 1 {
                t.out.push(scc);
            }
        }
    }
    let n = graph.len();
    let mut t = T {
        g: graph,
        index: vec![None; n],
        low: vec![0; n],
        stack: Vec::new(),
        on: vec![false; n],
        next: 0,
        out: Vec::new(),
    };
    for v in 0..n {
        if t.index[v].is_none() {
            visit(&mut t, v);
        }
    }
    t.out
}

fn layer(top: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&top))
}

fn graph() -> (Vec<File>, Vec<BTreeSet<usize>>) {
    let files = files();
    let modules = Modules::new(&files);
    let graph = (0..files.len()).map(|i| modules.imports(i)).collect();
    (files, graph)
}

#[test]
fn no_files_import_each_other() {
    let (files, graph) = graph();
    let mut found: Vec<Vec<&str>> = cycles(&graph)
        .into_iter()
        .map(|scc| {
            let mut names: Vec<&str> = scc.iter().map(|&i| files[i].path.as_str()).collect();
            names.sort_unstable();
            names
        })
        .collect();
    found.retain(|c| !KNOWN_CYCLES.contains(&c.as_slice()));
    assert!(found.is_empty(), "import cycles: {found:?}");
}

#[test]
fn each_layer_imports_only_from_the_layers_below() {
    let (files, graph) = graph();
    let mut wrong = Vec::new();
    for (i, targets) in graph.iter().enumerate() {
        let Some(from) = files[i].module.first() else {
            continue;
        };
        for &t in targets {
            let Some(to) = files[t].module.first() else {
                continue;
            };
            let (a, b) = (
                layer(from).expect("a known layer"),
                layer(to).expect("a known layer"),
            );
            if from != to && a > b {
                wrong.push(format!("{} -> {}", files[i].path, files[t].path));
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the layers: {wrong:#?}");
}

#[test]
fn the_engine_and_data_name_no_web_or_async_crate() {
    let mut wrong = Vec::new();
    for f in files() {
        let Some(top) = f.module.first() else {
            continue;
        };
        let banned = match top.as_str() {
            t if NO_WEB.contains(&t) => WEB,
            "serving" => SERVING_WEB,
            _ => continue,
        };
        let code: String = f
            .uses
            .iter()
            .map(|u| format!("use {};\n", u.1))
            .collect::<String>()
            + &f.rest;
        for krate in banned {
            let named = code.match_indices(&format!("{krate}::")).any(|(at, _)| {
                !code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':')
            });
            if named {
                wrong.push(format!("{} names {krate}", f.path));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn the_reader_sees_the_imports_it_checks() {
    // The checks above are only as good as the reading: a few imports it must find.
    let (files, graph) = graph();
    let index = |p: &str| {
        files
            .iter()
            .position(|f| f.path == p)
            .unwrap_or_else(|| panic!("{p}"))
    };
    let imports = |a: &str, b: &str| graph[index(a)].contains(&index(b));
    assert!(
        imports("http/admin.rs", "http/state.rs"),
        "a `use super::` line"
    );
    assert!(
        imports("serving/tasks.rs", "serving/store/mod.rs"),
        "a `use super::store::{{…}}`"
    );
    assert!(
        imports("serving/train.rs", "data/source/mod.rs"),
        "a name through the data face"
    );
    assert!(
        imports("data/source/file.rs", "data/load.rs"),
        "an inline `crate::data::load`"
    );
    assert!(
        !imports("data/mod.rs", "data/load.rs"),
        "a face's re-export is no import"
    );
}
