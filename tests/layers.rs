//! The floor plan holds: every `crate::` path in `src/` points to a module on a lower layer than
//! its own (the layers are the table in ARCHITECTURE.md), and no files of one module import each
//! other in a circle. Tests inside a file (`#[cfg(test)] mod tests`) and comments are not counted.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Layer of each top-level module, from the `| N | a, b | ... |` rows of ARCHITECTURE.md.
fn layers(architecture: &str) -> BTreeMap<String, usize> {
    let mut layer_of = BTreeMap::new();
    for line in architecture.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let (Some(number), Some(modules)) = (cells.get(1), cells.get(2)) else {
            continue;
        };
        let Ok(n) = number.parse::<usize>() else {
            continue;
        };
        for module in modules.split(',') {
            let name = module.trim().trim_matches('`').to_string();
            assert!(
                layer_of.insert(name.clone(), n).is_none(),
                "ARCHITECTURE.md lists `{name}` twice"
            );
        }
    }
    layer_of
}

/// The source without comments and without the test module (from `#[cfg(test)] mod tests {` to
/// its closing brace at the start of a line, as rustfmt leaves it), so only code is read.
fn code_of(text: &str) -> String {
    let mut code = String::with_capacity(text.len());
    let mut in_tests = false;
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line == "#[cfg(test)]" && lines.peek() == Some(&"mod tests {") {
            in_tests = true;
        }
        if in_tests {
            in_tests = line != "}";
            continue;
        }
        let line = match line.find("//") {
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        };
        code.push_str(line);
        code.push('\n');
    }
    code
}

/// Every `crate::a::b...` path in `code`, as its segments.
fn crate_paths(code: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        if code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue; // e.g. `segprep_crate::`
        }
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            paths.extend(group_heads(group).into_iter().map(|head| vec![head]));
            continue;
        }
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        let segments = rest[..end]
            .split("::")
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        paths.push(segments);
    }
    paths
}

/// The first segment of each item of a `crate::{a::x, b, c::{y, z}}` group (`group` starts after
/// the opening brace).
fn group_heads(group: &str) -> Vec<String> {
    let (mut heads, mut depth, mut item) = (Vec::new(), 0, String::new());
    for c in group.chars() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => heads.push(std::mem::take(&mut item)),
            _ if depth == 0 => item.push(c),
            _ => {}
        }
    }
    heads.push(item);
    heads
        .iter()
        .filter_map(|i| i.trim().split("::").next().map(str::to_string))
        .filter(|h| !h.is_empty())
        .collect()
}

/// `src/` files as (module path below `src`, code).
fn sources() -> Vec<(Vec<String>, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let src = repo().join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let rel = f.strip_prefix(&src).unwrap().with_extension("");
            let mut module: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if module.last().is_some_and(|m| m == "mod") {
                module.pop();
            }
            (module, code_of(&std::fs::read_to_string(&f).unwrap()))
        })
        .collect()
}

/// Imports from a module to one on its own layer or above: `file -> module`.
fn upward_imports(
    files: &[(Vec<String>, String)],
    layer_of: &BTreeMap<String, usize>,
) -> Vec<String> {
    let mut wrong = Vec::new();
    for (module, code) in files {
        let top = &module[0];
        if top == "main" || top == "lib" {
            continue;
        }
        let Some(&own) = layer_of.get(top) else {
            wrong.push(format!(
                "src/{} is in no layer of ARCHITECTURE.md",
                module.join("/")
            ));
            continue;
        };
        let targets: BTreeSet<String> = crate_paths(code)
            .into_iter()
            .filter_map(|p| p.into_iter().next())
            .filter(|t| t != top)
            .collect();
        for target in targets {
            match layer_of.get(&target) {
                Some(&layer) if layer < own => {}
                Some(&layer) => wrong.push(format!(
                    "{} (layer {own}) imports crate::{target} (layer {layer})",
                    module.join("::")
                )),
                None => wrong.push(format!(
                    "{} imports crate::{target}, which is in no layer",
                    module.join("::")
                )),
            }
        }
    }
    wrong
}

/// Circles among the files of one module: `a.rs` naming a sibling `b` (`super::b`,
/// `crate::m::b`) is an edge a -> b; a parent's `mod.rs` assembling its children is not.
fn sibling_circles(files: &[(Vec<String>, String)]) -> Vec<String> {
    let known: BTreeSet<Vec<String>> = files.iter().map(|(m, _)| m.clone()).collect();
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (module, code) in files {
        let Some((_, parent)) = module.split_last() else {
            continue;
        };
        let mut named = Vec::new();
        for (at, _) in code.match_indices("super::") {
            let rest = &code[at + "super::".len()..];
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            named.push(rest[..end].to_string());
        }
        for path in crate_paths(code) {
            if path.len() > parent.len() && path[..parent.len()] == *parent {
                named.push(path[parent.len()].clone());
            }
        }
        for name in named {
            let mut sibling = parent.to_vec();
            sibling.push(name);
            if sibling != *module && known.contains(&sibling) {
                edges.entry(module.clone()).or_default().insert(sibling);
            }
        }
    }
    let mut circles = Vec::new();
    for start in edges.keys() {
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        while let Some((at, trail)) = stack.pop() {
            for next in edges.get(&at).into_iter().flatten() {
                if next == start {
                    let names: Vec<String> = trail.iter().map(|m| m.join("::")).collect();
                    circles.push(format!("{} -> {}", names.join(" -> "), start.join("::")));
                } else if !trail.contains(next) && next > start {
                    let mut longer = trail.clone();
                    longer.push(next.clone());
                    stack.push((next.clone(), longer));
                }
            }
        }
    }
    circles
}

#[test]
fn imports_only_look_down() {
    let architecture = std::fs::read_to_string(repo().join("ARCHITECTURE.md")).unwrap();
    let layer_of = layers(&architecture);
    assert!(
        layer_of.len() >= 10,
        "ARCHITECTURE.md's layer table was not found"
    );
    let wrong = upward_imports(&sources(), &layer_of);
    assert!(
        wrong.is_empty(),
        "imports that do not look down (move the type to the lower module, or fix the layer table):\n  {}",
        wrong.join("\n  ")
    );
}

#[test]
fn no_files_of_a_module_import_each_other_in_a_circle() {
    let circles = sibling_circles(&sources());
    assert!(
        circles.is_empty(),
        "import circles:\n  {}",
        circles.join("\n  ")
    );
}

fn plant(files: &mut [(Vec<String>, String)], module: &str, line: &str) {
    let path: Vec<String> = module.split("::").map(String::from).collect();
    let file = files.iter_mut().find(|(m, _)| *m == path).unwrap();
    file.1.push_str(&code_of(line));
}

#[test]
fn a_planted_upward_import_is_caught() {
    let architecture = std::fs::read_to_string(repo().join("ARCHITECTURE.md")).unwrap();
    let layer_of = layers(&architecture);
    let mut files = sources();
    plant(&mut files, "decode::label", "use crate::engine::build;\n");
    plant(
        &mut files,
        "split",
        "use crate::{sample::PairRef, source::{folder, paths}};\n",
    );
    // a commented-out one is not an import
    plant(&mut files, "stages::pad", "// use crate::cli::run;\n");
    let wrong = upward_imports(&files, &layer_of);
    assert_eq!(wrong.len(), 2, "{wrong:?}");
    assert!(wrong[0].starts_with("decode::label (layer"), "{wrong:?}");
    assert!(
        wrong[1].starts_with("split (layer 6) imports crate::source"),
        "{wrong:?}"
    );
}

#[test]
fn a_planted_circle_is_caught() {
    let mut files = sources();
    plant(
        &mut files,
        "stages::augment::sampling",
        "use super::warp::affine;\n",
    );
    let circles = sibling_circles(&files);
    assert!(
        circles
            .iter()
            .any(|c| c.contains("stages::augment::sampling")),
        "{circles:?}"
    );
}
