//! The import graph of `src/` follows the layers of ARCHITECTURE.md: a top-level module
//! of the library names (`crate::<module>`) only modules on a lower layer, no two
//! top-level modules depend on each other, and no two files of one module (or of the
//! binary) use each other.
//!
//! The check reads the source text: it strips comments and string literals, then takes
//! every `crate::<module>` path, `use crate::{a, b}` group and `super::` path that
//! leaves a file's own module. A `super::Name` the parent re-exports (`pub use
//! file::Name`) is a use of that file; one the parent file defines is a use of the
//! parent file, which uses the files it names.
//!
//! The same reading counts the names `src/lib.rs` puts at the crate's root, so that the
//! public surface cannot grow again unnoticed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The library's top-level modules, bottom layer first. A module may use the modules
/// of the layers below its own, never its own layer or one above.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "Dhan's fixed numbers, the profile's secrets, the lock",
        &["dhan", "secret", "sync"],
    ),
    (
        "leaves: plain data and helpers",
        &[
            "console",
            "error_class",
            "progress",
            "redact",
            "token",
            "totp",
        ],
    ),
    (
        "Dhan: its HTTP API, the stand-in of it, and the rules of its tokens",
        &["api", "decide", "mock"],
    ),
    ("configuration", &["config"]),
    ("state and the headless browser", &["browser", "store"]),
    ("the library's error, wrapping each layer's", &["error"]),
    (
        "the ways to obtain a token, and the chain; a running daemon, asked first",
        &["daemon", "source"],
    ),
    ("the decision: cached, chain, store", &["manager"]),
    ("the daemon", &["serve"]),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file below `root`: `store/pg/mod.rs` is `["store", "pg"]`.
fn module_path(root: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(root).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The code without comments, string literals or character literals: what is left
/// names only items.
fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut depth = 0;
                while i < b.len() {
                    if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                        depth += 1;
                        i += 2;
                    } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                out.push(' ');
            }
            b'r' if (b.get(i + 1) == Some(&b'"') || b.get(i + 1) == Some(&b'#'))
                && (i == 0 || !is_ident(b[i - 1])) =>
            {
                // A raw string: r"…", r#"…"#.
                let mut j = i + 1;
                let mut hashes = 0;
                while b.get(j) == Some(&b'#') {
                    hashes += 1;
                    j += 1;
                }
                if b.get(j) != Some(&b'"') {
                    out.push('r');
                    i += 1;
                    continue;
                }
                j += 1;
                let close: Vec<u8> = std::iter::once(b'"')
                    .chain(std::iter::repeat_n(b'#', hashes))
                    .collect();
                while j < b.len() && !b[j..].starts_with(&close) {
                    j += 1;
                }
                i = j + close.len();
                out.push_str("\"\"");
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                out.push_str("\"\"");
            }
            b'\'' => {
                // '\n', 'x' and '"' are literals; 'a in `&'a str` is a lifetime.
                if b.get(i + 1) == Some(&b'\\') {
                    i += 2;
                    while i < b.len() && b[i] != b'\'' {
                        i += 1;
                    }
                    i += 1;
                } else if b.get(i + 2) == Some(&b'\'') {
                    i += 3;
                } else {
                    out.push('\'');
                    i += 1;
                }
            }
            c => {
                out.push(c as char);
                i += 1;
            }
        }
    }
    out
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

fn ident_at(s: &str, at: usize) -> &str {
    let rest = &s[at..];
    let end = rest
        .bytes()
        .position(|c| !is_ident(c))
        .unwrap_or(rest.len());
    &rest[..end]
}

/// The first name of each path that follows `prefix` (`crate::`, `super::`) in `code`,
/// with the number of `super::` before it: `crate::{a::X, b}` gives a and b.
fn paths_after(code: &str, prefix: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(pos) = code[from..].find(prefix) {
        let start = from + pos;
        from = start + prefix.len();
        if start > 0 && (is_ident(code.as_bytes()[start - 1]) || code[..start].ends_with("::")) {
            continue;
        }
        let mut at = from;
        let mut supers = 1;
        while code[at..].starts_with(prefix) {
            at += prefix.len();
            supers += 1;
        }
        from = at;
        let rest = code[at..].trim_start();
        let at = code.len() - rest.len();
        if rest.starts_with('{') {
            let mut depth = 0;
            let mut item_start = true;
            for (k, c) in rest.char_indices() {
                match c {
                    '{' => {
                        depth += 1;
                        item_start = depth == 1;
                    }
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => item_start = true,
                    c if item_start && (c.is_ascii_alphabetic() || c == '_') => {
                        found.push((supers, ident_at(code, at + k).to_owned()));
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            let name = ident_at(code, at);
            if !name.is_empty() {
                found.push((supers, name.to_owned()));
            }
        }
    }
    found
}

/// What a parent module re-exports from its own files, name → file: `pub use
/// store::{A, B as C};` and `pub(crate) use lock::D;` give A and C → store, D → lock. So
/// a file that names `super::C` is seen to use `store`, not the parent.
fn reexports(code: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut from = 0;
    while let Some(pos) = code[from..].find("use ") {
        let start = from + pos;
        from = start + "use ".len();
        if start > 0 && is_ident(code.as_bytes()[start - 1]) {
            continue;
        }
        // `pub`, `pub(crate)`, `pub(super)`… just before `use`.
        let mut before = code[..start].trim_end();
        if before.ends_with(')') {
            let Some(open) = before.rfind('(') else {
                continue;
            };
            before = before[..open].trim_end();
        }
        let is_pub = before.ends_with("pub")
            && !before[..before.len() - 3]
                .bytes()
                .next_back()
                .is_some_and(is_ident);
        if !is_pub {
            continue;
        }
        let stmt = code[from..].split(';').next().unwrap_or("").trim();
        let stmt = stmt.strip_prefix("self::").unwrap_or(stmt);
        let child = ident_at(stmt, 0);
        let Some(rest) = stmt[child.len()..].strip_prefix("::") else {
            continue;
        };
        if child.is_empty() || child == "crate" || child == "super" {
            continue;
        }
        let rest = rest.trim();
        let items: Vec<&str> = match rest.strip_prefix('{') {
            Some(group) => group.trim_end_matches('}').split(',').collect(),
            None => vec![rest],
        };
        for item in items {
            let item = item.trim();
            let name = match item.split_once(" as ") {
                Some((_, alias)) => alias.trim(),
                None => item.rsplit("::").next().unwrap_or("").trim(),
            };
            if !name.is_empty() && name != "self" && name != "*" && !name.contains('{') {
                out.insert(name.to_owned(), child.to_owned());
            }
        }
    }
    out
}

/// The items a file defines at any depth (`fn`, `struct`, `enum`, `trait`, `type`,
/// `const`, `static`): what a child can reach as `super::Name` in the parent itself.
fn defined(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for word in [
        "fn ", "struct ", "enum ", "trait ", "type ", "const ", "static ",
    ] {
        let mut from = 0;
        while let Some(pos) = code[from..].find(word) {
            let start = from + pos;
            from = start + word.len();
            if start > 0 && is_ident(code.as_bytes()[start - 1]) {
                continue;
            }
            let name = ident_at(code, from);
            if !name.is_empty() {
                out.insert(name.to_owned());
            }
        }
    }
    out
}

/// `stmt` without its leading attributes: a `mod` or `pub use` gated by
/// `#[cfg(test)]` or `#[cfg(feature = "serve")]` still only declares or publishes, and
/// the first `mod` of a file follows its `#![…]` attributes.
fn without_attributes(mut stmt: &str) -> &str {
    loop {
        stmt = stmt.trim_start();
        let Some(rest) = stmt.strip_prefix("#[").or_else(|| stmt.strip_prefix("#![")) else {
            return stmt;
        };
        let mut depth = 1;
        let end = rest.char_indices().find_map(|(i, c)| {
            match c {
                '[' => depth += 1,
                ']' => depth -= 1,
                _ => {}
            }
            (depth == 0).then_some(i)
        });
        match end {
            Some(end) => stmt = &rest[end + 1..],
            None => return stmt,
        }
    }
}

/// The files of its module that a parent file names (`flow::run`, `use session::X`),
/// leaving out its `mod` declarations and `pub use` re-exports, which only publish.
fn named_by_parent(code: &str, members: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for stmt in code.split(';') {
        let lead = without_attributes(stmt);
        // `pub use`, `pub(crate) use`…: the word after the visibility is `use`.
        let publishes = lead.strip_prefix("pub").is_some_and(|rest| {
            let rest = rest.trim_start();
            let rest = match rest.strip_prefix('(') {
                Some(inner) => inner.split_once(')').map_or("", |(_, r)| r),
                None => rest,
            };
            rest.trim_start().starts_with("use ")
        });
        if lead.starts_with("mod ") || lead.starts_with("pub mod ") || publishes {
            continue;
        }
        for m in members {
            let path = format!("{m}::");
            let mut from = 0;
            while let Some(pos) = stmt[from..].find(&path) {
                let start = from + pos;
                from = start + path.len();
                let before = &stmt[..start];
                if !before.ends_with("::") && !before.bytes().next_back().is_some_and(is_ident) {
                    out.insert(m.clone());
                }
            }
        }
    }
    out
}

/// The file of the parent module `parent` (`config` → `config/mod.rs` or `config.rs`).
fn parent_file(root: &Path, parent: &[String]) -> Option<PathBuf> {
    let dir = parent
        .iter()
        .fold(root.to_path_buf(), |p, part| p.join(part));
    let flat = dir.with_extension("rs");
    [dir.join("mod.rs"), flat].into_iter().find(|f| f.is_file())
}

/// A cycle in `graph`, as the path that closes it, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == node) {
            let mut cycle = path[i..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

/// Which top-level modules each top-level module of the library uses, with the file
/// that does.
fn library_graph() -> BTreeMap<String, BTreeMap<String, String>> {
    let root = src();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let modules: BTreeSet<String> = files
        .iter()
        .filter_map(|f| module_path(&root, f).first().cloned())
        .filter(|m| m != "lib" && m != "bin")
        .collect();
    let mut graph: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for file in &files {
        let module = module_path(&root, file);
        let Some(top) = module.first() else { continue };
        if top == "lib" || top == "bin" {
            continue;
        }
        let code = code_only(&std::fs::read_to_string(file).unwrap());
        let shown = file.strip_prefix(&root).unwrap().display().to_string();
        let uses = graph.entry(top.clone()).or_default();
        for (_, name) in paths_after(&code, "crate::") {
            assert!(
                modules.contains(&name),
                "{shown} names `crate::{name}`: name the module the item lives in \
                 (crate::<module>::…), not the root's re-export, so that the layers can \
                 be checked"
            );
            if &name != top {
                uses.entry(name).or_insert_with(|| shown.clone());
            }
        }
        // `super::` as many times as the file is deep reaches the crate root.
        for (supers, name) in paths_after(&code, "super::") {
            if supers >= module.len() && modules.contains(&name) && &name != top {
                uses.entry(name).or_insert_with(|| shown.clone());
            }
        }
    }
    graph
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, ms)| ms.contains(&module))
}

#[test]
fn every_module_uses_only_lower_layers() {
    let graph = library_graph();
    let mut wrong = Vec::new();
    for (module, uses) in &graph {
        let Some(own) = layer_of(module) else {
            wrong.push(format!(
                "src/{module} is in no layer: add it to LAYERS here and to ARCHITECTURE.md"
            ));
            continue;
        };
        for (used, file) in uses {
            let theirs = layer_of(used).unwrap_or(usize::MAX);
            if theirs >= own {
                wrong.push(format!(
                    "{file}: `{module}` ({}) uses `{used}` ({})",
                    LAYERS[own].0,
                    LAYERS.get(theirs).map_or("no layer", |l| l.0)
                ));
            }
        }
    }
    for (_, modules) in LAYERS {
        for m in *modules {
            assert!(
                graph.contains_key(*m),
                "LAYERS names `{m}`, which is not a module of src/"
            );
        }
    }
    assert!(wrong.is_empty(), "layer violations:\n{}", wrong.join("\n"));
}

#[test]
fn no_cycle_between_top_level_modules() {
    let graph: BTreeMap<String, BTreeSet<String>> = library_graph()
        .into_iter()
        .map(|(m, uses)| (m, uses.into_keys().collect()))
        .collect();
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import cycle: {}", cycle.join(" -> "));
    }
}

/// The files of one module (or of the binary) use each other one way only: a helper
/// both need goes in a file of its own. A `super::Name` that the parent re-exports
/// (`pub use file::Name`) counts as a use of the file it comes from.
#[test]
fn no_cycle_between_the_files_of_a_module() {
    let root = src();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    // Siblings by parent: `mock/pages.rs` and `mock/routes.rs` under `mock`.
    let mut families: BTreeMap<Vec<String>, BTreeMap<String, String>> = BTreeMap::new();
    for file in &files {
        let mut module = module_path(&root, file);
        // The binary is a crate of its own: its files sit under its main.rs.
        if module.first().is_some_and(|m| m == "bin") {
            module.drain(..2);
            if module == ["main"] {
                continue;
            }
            module.insert(0, "bin".into());
        }
        if module == ["lib"] || module.len() < 2 || file.ends_with("mod.rs") {
            continue;
        }
        let name = module.pop().unwrap();
        let code = code_only(&std::fs::read_to_string(file).unwrap());
        families.entry(module).or_default().insert(name, code);
    }
    // The parent file (`mod.rs`, or `manager.rs` beside `manager/`) is a node too: it
    // uses the files it names, and a file that names an item the parent defines uses it.
    const PARENT: &str = "(parent)";
    let mut loops = Vec::new();
    for (parent, members) in &families {
        let parent_code = if parent[0] == "bin" {
            None
        } else {
            parent_file(&root, parent).map(|f| code_only(&std::fs::read_to_string(f).unwrap()))
        };
        let reexported = parent_code.as_deref().map(reexports).unwrap_or_default();
        let own_items = parent_code.as_deref().map(defined).unwrap_or_default();
        let names: BTreeSet<String> = members.keys().cloned().collect();
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        if let Some(code) = &parent_code {
            graph.insert(PARENT.to_owned(), named_by_parent(code, &names));
        }
        for (name, code) in members {
            let mut uses = BTreeSet::new();
            for (supers, used) in paths_after(code, "super::") {
                if supers != 1 {
                    continue;
                }
                if let Some(file) = reexported.get(&used) {
                    uses.insert(file.clone());
                } else if own_items.contains(&used) && !members.contains_key(&used) {
                    uses.insert(PARENT.to_owned());
                } else {
                    uses.insert(used);
                }
            }
            // `crate::mock::state` from `mock/pages.rs` is a sibling too; in the
            // binary, `crate::` starts at its files.
            if parent[0] == "bin" {
                uses.extend(paths_after(code, "crate::").into_iter().map(|(_, u)| u));
            } else {
                let own = format!("crate::{}::", parent.join("::"));
                let mut from = 0;
                while let Some(pos) = code[from..].find(&own) {
                    from += pos + own.len();
                    uses.insert(ident_at(code, from).to_owned());
                }
            }
            uses.retain(|u| u != name && (members.contains_key(u) || u == PARENT));
            graph.insert(name.clone(), uses);
        }
        let shown = parent.join("/");
        let files_only: BTreeMap<String, BTreeSet<String>> = graph
            .iter()
            .filter(|(n, _)| *n != PARENT)
            .map(|(n, uses)| {
                (
                    n.clone(),
                    uses.iter().filter(|u| *u != PARENT).cloned().collect(),
                )
            })
            .collect();
        match (find_cycle(&files_only), find_cycle(&graph)) {
            (Some(cycle), _) => loops.push(format!(
                "the files of {shown} use each other: {}",
                cycle.join(" -> ")
            )),
            (None, Some(cycle)) => loops.push(format!(
                "the files of {shown} and its parent file use each other: {} (move what \
                 they share into a file of its own)",
                cycle.join(" -> ")
            )),
            (None, None) => {}
        }
    }
    assert!(loops.is_empty(), "{}", loops.join("\n"));
}

/// The most names the crate's root may hold, modules included: what a program that
/// wants a token names (the manager, its request and answer, the profile and its
/// secrets, the token, the errors, the traits a program provides) and the public
/// modules; anything else belongs under one of those modules.
const MAX_ROOT_NAMES: usize = 30;

/// The names `src/lib.rs` puts at the crate's root: each `pub mod` (gated ones too) and
/// each name a `pub use` brings in, sorted.
fn root_names(code: &str) -> Vec<String> {
    let mut names = Vec::new();
    for stmt in code.split(';') {
        let lead = without_attributes(stmt);
        if let Some(name) = lead.strip_prefix("pub mod ") {
            names.push(ident_at(name.trim_start(), 0).to_owned());
        } else if let Some(path) = lead.strip_prefix("pub use ") {
            names.extend(leaf_names(path.trim()));
        }
    }
    names.sort();
    names
}

/// The names a use path ends in: `a::{B, c::{D, E as F}}` gives B, D and F.
fn leaf_names(path: &str) -> Vec<String> {
    let Some(open) = path.find('{') else {
        let last = path.rsplit("::").next().unwrap_or(path);
        let name = last.split_once(" as ").map_or(last, |(_, alias)| alias);
        return vec![name.trim().to_owned()];
    };
    let inner = &path[open + 1..path.rfind('}').unwrap_or(path.len())];
    let (mut items, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[start..]);
    items
        .into_iter()
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .flat_map(leaf_names)
        .collect()
}

/// The root stays a surface a user can read: a new public item goes under a module,
/// and the root only grows by taking another name off it.
#[test]
fn the_crate_root_holds_at_most_30_names() {
    let lib = code_only(&std::fs::read_to_string(src().join("lib.rs")).unwrap());
    let names = root_names(&lib);
    assert!(
        !names.iter().any(|n| n == "*"),
        "src/lib.rs re-exports a glob: it would hide how many names it brings in"
    );
    assert!(
        names.len() <= MAX_ROOT_NAMES,
        "src/lib.rs puts {} names at the crate's root (at most {MAX_ROOT_NAMES}): {}; reach \
         the new ones by their module's path instead",
        names.len(),
        names.join(", ")
    );
    // The count reads what is there: the first module (after the crate's attributes),
    // the manager and the module it lives in, a gated module.
    for expected in ["api", "TokenManager", "manager", "mock"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} not found in {names:?}"
        );
    }
}

#[test]
fn the_root_count_reads_groups_aliases_and_gated_modules() {
    let code = code_only(
        "#![warn(missing_docs)]\n\npub mod a;\n#[cfg(feature = \"x\")]\npub mod b;\nmod private;\n\
         pub use a::{B, c::{D, E as F}};\npub use g::H;\nuse i::Hidden;\n\
         pub(crate) use j::Internal;\n// pub use k::Comment;",
    );
    assert_eq!(root_names(&code), ["B", "D", "F", "H", "a", "b"]);
}

#[test]
fn the_reader_finds_grouped_and_nested_paths() {
    let code = code_only(
        "use crate::{api::X, config::{A, B}};\n// crate::serve in a comment\n\
         let s = \"crate::manager\"; let c = '\"'; use super::super::store::Y;\n\
         fn f<'a>(x: &'a crate::token::Token) {}",
    );
    let crate_paths: Vec<String> = paths_after(&code, "crate::")
        .into_iter()
        .map(|(_, n)| n)
        .collect();
    assert_eq!(crate_paths, ["api", "config", "token"]);
    assert_eq!(paths_after(&code, "super::"), [(2, "store".to_owned())]);
}

#[test]
fn a_reexport_names_the_file_it_comes_from() {
    let code = code_only(
        "mod a;\npub use a::{X, y::Y as Z};\npub(crate) use self::b::W;\n\
         use c::Private;\npub use crate::other::V;\npub(super) use d::*;",
    );
    let found: Vec<(String, String)> = reexports(&code).into_iter().collect();
    let pair = |n: &str, f: &str| (n.to_owned(), f.to_owned());
    assert_eq!(found, [pair("W", "b"), pair("X", "a"), pair("Z", "a")]);
}

#[test]
fn a_parent_file_names_its_files_but_publishing_them_is_no_use() {
    let code = code_only(
        "mod flow;\nmod session;\nmod gated;\npub use flow::Outcome;\npub(crate) use session::S;\n\
         #[cfg(feature = \"serve\")]\npub(crate) use gated::G;\n\
         pub fn run() { use flow::go; go(); other::session::x(); }\npub struct Shared;",
    );
    let members: BTreeSet<String> = ["flow", "session", "gated"].map(String::from).into();
    assert_eq!(
        named_by_parent(&code, &members),
        BTreeSet::from(["flow".to_owned()])
    );
    let items = defined(&code);
    assert!(
        items.contains("run") && items.contains("Shared"),
        "{items:?}"
    );
}

#[test]
fn a_cycle_is_found() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec![]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
    .collect();
    assert_eq!(find_cycle(&graph).unwrap(), ["a", "b", "c", "a"]);
}
