//! README's code snippets are cut from the programs that `scripts/examples` and
//! `scripts/test_packages` run,
//! so the README never shows code that no test ran.
//!
//! In an example, a region runs from a `[readme:NAME]` comment line to the next
//! `[/readme]` line. In README, `<!-- cut from PATH#NAME -->` is followed by a fenced block
//! holding that region, without its common indentation. `DHAN_LOGIN_UPDATE_README=1`
//! rewrites README's blocks from the examples instead of failing.

use std::collections::BTreeMap;
use std::path::Path;

const MARK: &str = "<!-- cut from ";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every region of one example file, by name.
fn regions(path: &str) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(root().join(path))
        .unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    let mut out = BTreeMap::new();
    let mut open: Option<(String, Vec<&str>)> = None;
    for line in text.lines() {
        let t = line.trim();
        if let Some(name) = t
            .split_once("[readme:")
            .and_then(|(_, rest)| rest.strip_suffix(']'))
        {
            assert!(open.is_none(), "{path}: region {name} opens inside another");
            open = Some((name.to_owned(), Vec::new()));
        } else if t.ends_with("[/readme]") {
            let (name, lines) = open
                .take()
                .unwrap_or_else(|| panic!("{path}: [/readme] closes nothing"));
            out.insert(name, dedent(&lines));
        } else if let Some((_, lines)) = open.as_mut() {
            lines.push(line);
        }
    }
    assert!(open.is_none(), "{path}: a region is never closed");
    out
}

fn dedent(lines: &[&str]) -> String {
    let indent = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    lines
        .iter()
        .map(|l| l.get(indent..).unwrap_or("").trim_end())
        .collect::<Vec<_>>()
        .join("\n")
}

/// README with each marked block replaced by its region; the (file, region) pairs used.
fn rebuild(readme: &str) -> (String, Vec<(String, String)>) {
    let mut out = Vec::new();
    let mut used = Vec::new();
    let mut lines = readme.lines().peekable();
    while let Some(line) = lines.next() {
        out.push(line.to_owned());
        let Some(spec) = line.strip_prefix(MARK).and_then(|r| r.strip_suffix(" -->")) else {
            continue;
        };
        let (file, name) = spec
            .split_once('#')
            .unwrap_or_else(|| panic!("README marker `{line}` lacks #NAME"));
        let fence = lines
            .next()
            .filter(|l| l.starts_with("```"))
            .unwrap_or_else(|| panic!("README: `{line}` is not followed by a fenced block"));
        out.push(fence.to_owned());
        for body in lines.by_ref() {
            if body.starts_with("```") {
                break;
            }
        }
        let region = regions(file)
            .remove(name)
            .unwrap_or_else(|| panic!("README cuts {file}#{name}, which has no such region"));
        out.push(region);
        out.push("```".to_owned());
        used.push((file.to_owned(), name.to_owned()));
    }
    let mut text = out.join("\n");
    text.push('\n');
    (text, used)
}

#[test]
fn readme_snippets_are_cut_from_the_examples() {
    let path = root().join("README.md");
    let readme = std::fs::read_to_string(&path).expect("README.md");
    let (expected, used) = rebuild(&readme);
    if std::env::var_os("DHAN_LOGIN_UPDATE_README").is_some() {
        std::fs::write(&path, &expected).expect("rewrite README.md");
    } else if expected != readme {
        let first = readme
            .lines()
            .zip(expected.lines())
            .position(|(a, b)| a != b)
            .map_or(0, |i| i + 1);
        panic!(
            "README.md's snippets differ from the examples from line {first} on; \
             run DHAN_LOGIN_UPDATE_README=1 cargo test --test it readme::"
        );
    }
    for file in [
        "examples/java/DhanToken.java",
        "examples/python/dhan_token.py",
        "examples/node/dhan_token.mjs",
        "examples/token.rs",
        "examples/serve_client.rs",
    ] {
        for name in regions(file).keys() {
            assert!(
                used.iter().any(|(f, n)| f == file && n == name),
                "{file}#{name} is marked for README but README does not show it"
            );
        }
    }
    assert!(
        used.len() >= 9,
        "README shows the three ways in three languages"
    );
}

#[test]
fn regions_lose_their_common_indentation_only() {
    assert_eq!(dedent(&["    one", "      two", ""]), "one\n  two\n");
    assert_eq!(rebuild("plain\n"), ("plain\n".to_owned(), Vec::new()));
}
