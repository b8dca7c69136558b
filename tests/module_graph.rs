//! The house's shape: the top-level modules of src/ import each other without cycles, so each can
//! be read (and tested) from the leaves up: `arch`, `image`, `pod` first, `cli` last.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every `.rs` file under `path` (or `path` itself), its code without comments.
fn code(path: &Path, out: &mut String) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            code(&entry.unwrap().path(), out);
        }
    } else if path.is_file() && path.extension().is_some_and(|e| e == "rs") {
        for line in std::fs::read_to_string(path).unwrap().lines() {
            let line = line.split("//").next().unwrap_or("");
            out.push_str(line);
            out.push('\n');
        }
    }
}

/// Top-level module -> the other top-level modules its code names as `crate::X`.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let modules: Vec<String> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|m| m.trim_end_matches(';').to_string())
        .collect();
    assert!(modules.len() > 10, "lib.rs lists {modules:?}");
    let mut graph = BTreeMap::new();
    for m in &modules {
        let mut text = String::new();
        code(&src.join(format!("{m}.rs")), &mut text);
        code(&src.join(m), &mut text);
        let deps = modules
            .iter()
            .filter(|d| *d != m)
            .filter(|d| {
                text.contains(&format!("crate::{d}::")) || text.contains(&format!("crate::{d};"))
            })
            .cloned()
            .collect();
        graph.insert(m.clone(), deps);
    }
    graph
}

#[test]
fn top_level_modules_import_each_other_without_cycles() {
    let graph = graph();
    // Peel off modules whose dependencies are all peeled; what is left sits on a cycle.
    let mut done: BTreeSet<String> = BTreeSet::new();
    loop {
        let ready: Vec<String> = graph
            .iter()
            .filter(|(m, deps)| !done.contains(*m) && deps.iter().all(|d| done.contains(d)))
            .map(|(m, _)| m.clone())
            .collect();
        if ready.is_empty() {
            break;
        }
        done.extend(ready);
    }
    let cyclic: BTreeMap<_, _> = graph.iter().filter(|(m, _)| !done.contains(*m)).collect();
    assert!(cyclic.is_empty(), "modules on an import cycle: {cyclic:#?}");
    // The leaves stay leaves.
    for leaf in ["arch", "image", "pod", "text", "namespace"] {
        let deps = &graph[leaf];
        assert!(
            deps.iter()
                .all(|d| d == "text" || d == "arch" && leaf != "arch"),
            "{leaf} imports {deps:?}"
        );
    }
}
