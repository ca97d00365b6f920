//! The Dockerfile's build stage copies every file the build reads: each folder or file named by
//! an `include_str!`/`include_bytes!` in `src/`, and `build.rs`. (A page added under `web/`
//! once built everywhere but in `docker build`.)

use std::path::{Component, Path, PathBuf};

/// The first path component of every file the crate's sources include at compile time.
fn included_roots(dir: &Path, root: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            included_roots(&path, root, out);
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for macro_name in ["include_str!(\"", "include_bytes!(\""] {
            for (at, _) in text.match_indices(macro_name) {
                let rest = &text[at + macro_name.len()..];
                let target = &rest[..rest.find('"').unwrap()];
                let resolved: PathBuf = path.parent().unwrap().join(target);
                // Normalise `..` without touching the file system.
                let mut parts: Vec<Component> = Vec::new();
                for c in resolved.components() {
                    match c {
                        Component::ParentDir => {
                            parts.pop();
                        }
                        Component::CurDir => {}
                        c => parts.push(c),
                    }
                }
                let resolved: PathBuf = parts.iter().collect();
                let relative = resolved.strip_prefix(root).unwrap_or_else(|_| {
                    panic!("{}: includes {target} outside the crate", path.display())
                });
                let first = relative.components().next().unwrap();
                out.push(first.as_os_str().to_string_lossy().into_owned());
            }
        }
    }
}

#[test]
fn the_docker_build_copies_every_file_the_build_reads() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    let build_stage = dockerfile
        .split("\nFROM ")
        .nth(1)
        .expect("a build stage after the header");
    let copied: Vec<&str> = build_stage
        .lines()
        .filter_map(|l| l.strip_prefix("COPY "))
        .filter(|l| !l.starts_with("--from"))
        .flat_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words[..words.len() - 1].to_vec()
        })
        .collect();
    let mut needed = vec!["build.rs".to_owned(), "Cargo.toml".to_owned()];
    included_roots(&root.join("src"), root, &mut needed);
    needed.sort();
    needed.dedup();
    assert!(needed.contains(&"web".to_owned()), "{needed:?}");
    for n in &needed {
        assert!(
            copied.iter().any(|c| c.trim_end_matches('/') == n),
            "the Dockerfile's build stage does not COPY {n} (copies {copied:?})"
        );
    }
}
