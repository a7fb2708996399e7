//! The codebase's own rules, checked (STYLE.md: "rules that a test checks"): each module's
//! "Must not import" line (in the crate map of `lib.rs` and in every `//!` doc) against the
//! `crate::`, `super::` and `self::` paths its production code names; production functions of
//! at most [`FUNCTION_LINES_MAX`] lines, and files (in `src/`, `tests/`, `benches/`) of at
//! most [`FILE_LINES_MAX`], but for the
//! deliberate exceptions listed below, each with its reason. Reads the sources as text (they
//! are `rustfmt`-formatted): cheap, and it runs with the unit tests.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Longer production functions must be listed in [`LONG_FUNCTIONS`].
const FUNCTION_LINES_MAX: usize = 70;
/// Longer files must be listed in [`LONG_FILES`].
const FILE_LINES_MAX: usize = 800;

/// Functions allowed over [`FUNCTION_LINES_MAX`]: `(file, function, reason)`.
const LONG_FUNCTIONS: &[(&str, &str, &str)] = &[];

/// Files allowed over [`FILE_LINES_MAX`]: `(file, reason)`.
const LONG_FILES: &[(&str, &str)] = &[(
    "src/config/tests.rs",
    "one test per setting and error message; splitting them by setting would scatter the table they check",
)];

/// The crate's top-level modules: a name in a "Must not import" line that is one of these
/// means `crate::<name>`; any other name is a sibling of the module that says it.
const TOP_LEVEL: &[&str] = &[
    "api",
    "audit",
    "cli",
    "cluster",
    "config",
    "http",
    "limits",
    "metrics",
    "replication",
    "runtime",
    "server",
    "storage",
    "tls",
    "resp",
];

/// One source file: its path (from the crate root), module path, and production lines
/// (test modules blanked, comments stripped).
struct Source {
    path: String,
    module: Vec<String>,
    text: String,
    code: Vec<String>,
}

/// A rule: no path under `forbidden` in the production code of `scope` (a module and its
/// submodules), except paths ending in one of `allowed`.
#[derive(Debug)]
struct Rule {
    said_in: String,
    scope: Vec<String>,
    forbidden: Vec<Vec<String>>,
    allowed: Vec<String>,
}

fn crate_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read src")
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/replication/peer/mod.rs` → `[replication, peer]`; `src/lib.rs` → `[]`.
fn module_path(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .skip(1)
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

fn is_test_file(path: &str) -> bool {
    path.ends_with("tests.rs") || path.contains("/fake.rs") || path == "src/rules.rs"
}

/// The lines of production code: `#[cfg(test)]` items blanked, `//` comments cut off.
fn production_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut skip_until: Option<String> = None;
    let mut pending_cfg_test = false;
    for line in text.lines() {
        if let Some(end) = &skip_until {
            if line == end {
                skip_until = None;
            }
            out.push(String::new());
            continue;
        }
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]") {
            pending_cfg_test = true;
            out.push(String::new());
            continue;
        }
        if pending_cfg_test {
            pending_cfg_test = false;
            let indent = &line[..line.len() - trimmed.len()];
            if trimmed.ends_with('{') {
                skip_until = Some(format!("{indent}}}"));
            }
            out.push(String::new());
            continue;
        }
        let code = match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        };
        out.push(code.to_string());
    }
    out
}

fn sources() -> Vec<Source> {
    let root = crate_root();
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    files
        .into_iter()
        .map(|file| {
            let relative = file.strip_prefix(&root).expect("under the crate root");
            let text = std::fs::read_to_string(&file).expect("read source");
            let path = relative.to_string_lossy().to_string();
            let code = if is_test_file(&path) {
                Vec::new()
            } else {
                production_lines(&text)
            };
            Source {
                module: module_path(relative),
                path,
                text,
                code,
            }
        })
        .collect()
}

/// The backticked words of `text`.
fn ticked(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// The clause after "Must not import", to the end of its sentence.
fn clause_after(text: &str, marker: &str) -> Option<String> {
    let start = text.find(marker)? + marker.len();
    let rest = &text[start..];
    let mut in_tick = false;
    for (i, c) in rest.char_indices() {
        match c {
            '`' => in_tick = !in_tick,
            '.' | ':' | ';' if !in_tick => return Some(rest[..i].to_string()),
            _ => {}
        }
    }
    Some(rest.to_string())
}

/// The rule a module's `//!` doc states, if any.
fn doc_rule(source: &Source) -> Option<Rule> {
    let doc: Vec<&str> = source
        .text
        .lines()
        .take_while(|l| l.starts_with("//!"))
        .map(|l| l.trim_start_matches("//!").trim())
        .collect();
    let clause = without_asides(&clause_after(&doc.join(" "), "Must not import")?);
    let (names, allowed) = match clause.split_once(" beyond ") {
        Some((names, allowed)) => (names.to_string(), allowed_items(allowed)),
        None => (clause.clone(), Vec::new()),
    };
    let forbidden = if clause.trim_start().starts_with("anything outside") {
        let keep = ticked(&names);
        TOP_LEVEL
            .iter()
            .filter(|m| !keep.iter().any(|k| k == *m))
            .map(|m| vec!["crate".to_string(), m.to_string()])
            .collect()
    } else {
        let parent = &source.module[..source.module.len().saturating_sub(1)];
        ticked(&names)
            .into_iter()
            .map(|name| resolve_name(&name, parent))
            .collect()
    };
    Some(Rule {
        said_in: source.path.clone(),
        scope: source.module.clone(),
        forbidden,
        allowed,
    })
}

/// The clause without its parenthesised asides (`(\`tls\` is below it)` names no rule).
fn without_asides(text: &str) -> String {
    let mut depth = 0usize;
    let mut out = String::new();
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            c if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// What "beyond …" allows: the items named, or with "its types", any type (a path whose last
/// segment is capitalised).
fn allowed_items(text: &str) -> Vec<String> {
    if text.contains("its types") {
        return vec![TYPES.to_string()];
    }
    ticked(text)
}

/// The stand-in for "any type" in [`Rule::allowed`].
const TYPES: &str = "<types>";

fn is_allowed(rule: &Rule, last: &str) -> bool {
    let is_type = last.starts_with(|c: char| c.is_ascii_uppercase());
    rule.allowed
        .iter()
        .any(|a| a == last || (a == TYPES && is_type))
}

/// A name in a rule: a top-level module, or a sibling in `parent`.
fn resolve_name(name: &str, parent: &[String]) -> Vec<String> {
    let mut path = vec!["crate".to_string()];
    if !TOP_LEVEL.contains(&name) {
        path.extend(parent.iter().cloned());
    }
    path.push(name.to_string());
    path
}

/// The rules of the crate map in `lib.rs`: one per table row.
fn map_rules(lib: &Source) -> Vec<Rule> {
    let rows = lib.text.lines().filter(|l| l.starts_with("//! | `"));
    rows.filter_map(|row| {
        let cells: Vec<&str> = row.trim_start_matches("//!").split('|').collect();
        let module = ticked(cells.get(1)?).into_iter().next()?;
        let forbidden = ticked(&without_asides(cells.get(3)?))
            .into_iter()
            .map(|name| resolve_name(&name, &[]))
            .collect();
        Some(Rule {
            said_in: format!("{} (the crate map)", lib.path),
            scope: vec![module],
            forbidden,
            allowed: Vec::new(),
        })
    })
    .collect()
}

/// Every path a line of code names, made absolute (`crate::…`), `use` groups expanded.
fn paths_in(code: &str, module: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let mut i = 0;
    while i < code.len() {
        let rest = &code[i..];
        let starts = ["crate::", "super::", "self::"]
            .iter()
            .any(|p| rest.starts_with(p));
        let boundary = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if starts && boundary {
            let len = path_len(rest);
            for path in expand(&rest[..len]) {
                out.push(absolute(&path, module));
            }
            i += len.max(1);
        } else {
            i += rest.chars().next().map_or(1, char::len_utf8);
        }
    }
    out
}

/// How far a path (with `{…}` groups) goes.
fn path_len(text: &str) -> usize {
    let mut depth = 0usize;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return i,
            '}' => depth -= 1,
            c if c.is_alphanumeric() || c == '_' || c == ':' => {}
            ',' | ' ' | '\n' if depth > 0 => {}
            _ if depth == 0 => return i,
            _ => {}
        }
    }
    text.len()
}

/// `a::{b::C, d}` → `[a::b::C, a::d]`.
fn expand(path: &str) -> Vec<Vec<String>> {
    let Some(open) = path.find('{') else {
        let parts = path.split("::").filter(|p| !p.is_empty());
        return vec![parts.map(|s| s.trim().to_string()).collect()];
    };
    let head: Vec<String> = path[..open]
        .split("::")
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    let inner = path[open + 1..].trim_end_matches('}');
    let mut out = Vec::new();
    for item in split_top_level(inner) {
        for tail in expand(item.trim()) {
            let mut full = head.clone();
            full.extend(tail);
            out.push(full);
        }
    }
    out
}

fn split_top_level(text: &str) -> Vec<&str> {
    let (mut depth, mut start, mut out) = (0usize, 0usize, Vec::new());
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&text[start..]);
    out.into_iter().filter(|s| !s.trim().is_empty()).collect()
}

/// `super::x` in module `a::b` → `crate::a::x`.
fn absolute(path: &[String], module: &[String]) -> Vec<String> {
    let mut base: Vec<String> = module.to_vec();
    let mut parts = path.iter().peekable();
    match parts.peek().map(|s| s.as_str()) {
        Some("crate") => {
            parts.next();
            base.clear();
        }
        Some("self") => {
            parts.next();
        }
        _ => {}
    }
    while parts.peek().map(|s| s.as_str()) == Some("super") {
        parts.next();
        base.pop();
    }
    let mut out = vec!["crate".to_string()];
    out.extend(base);
    out.extend(parts.cloned());
    out
}

fn in_scope(module: &[String], scope: &[String]) -> bool {
    module.starts_with(scope)
}

/// The `(file, line, path, rule)` of every path a rule forbids.
fn layering_violations(sources: &[Source], rules: &[Rule]) -> Vec<String> {
    let mut found = Vec::new();
    for source in sources {
        for rule in rules.iter().filter(|r| in_scope(&source.module, &r.scope)) {
            for (n, line) in source.code.iter().enumerate() {
                for path in paths_in(line, &source.module) {
                    let last = path.last().map(String::as_str).unwrap_or_default();
                    let hit = rule.forbidden.iter().find(|f| path.starts_with(f));
                    if let Some(f) = hit {
                        if !is_allowed(rule, last) {
                            found.push(format!(
                                "{}:{}: {} (forbidden by {}: {})",
                                source.path,
                                n + 1,
                                path.join("::"),
                                rule.said_in,
                                f.join("::")
                            ));
                        }
                    }
                }
            }
        }
    }
    found
}

fn rules_of(sources: &[Source]) -> Vec<Rule> {
    let lib = sources.iter().find(|s| s.path == "src/lib.rs");
    let mut rules = lib.map(map_rules).unwrap_or_default();
    rules.extend(sources.iter().filter_map(doc_rule));
    rules
}

#[test]
fn no_module_imports_what_its_docs_forbid() {
    let sources = sources();
    let rules = rules_of(&sources);
    assert!(rules.len() >= 30, "the rules were not found: {rules:?}");
    let map_rows = rules
        .iter()
        .filter(|r| r.said_in.contains("crate map"))
        .count();
    assert_eq!(map_rows, TOP_LEVEL.len(), "a row per top-level module");
    let found = layering_violations(&sources, &rules);
    assert!(found.is_empty(), "layering broken:\n{}", found.join("\n"));
}

#[test]
fn the_layering_check_catches_a_forbidden_import() {
    let planted = Source {
        path: "src/storage/planted.rs".into(),
        module: vec!["storage".into(), "planted".into()],
        text: String::new(),
        code: production_lines(
            "use crate::{limits, replication::{clock::Hlc, driver}};\n\
             fn f() { super::super::api::x(); }\n\
             #[cfg(test)]\nmod tests {\n    use crate::http::X;\n}\n",
        ),
    };
    let rules = rules_of(&sources());
    let found = layering_violations(&[planted], &rules);
    let joined = found.join("\n");
    assert!(
        joined.contains("crate::replication::clock::Hlc"),
        "{joined}"
    );
    assert!(joined.contains("crate::replication::driver"), "{joined}");
    assert!(joined.contains("crate::api::x"), "{joined}");
    assert!(
        !joined.contains("limits") && !joined.contains("http"),
        "{joined}"
    );
    // A sibling named in a submodule's rule: the transport must not reach the driver.
    let planted = Source {
        path: "src/replication/transport.rs".into(),
        module: vec!["replication".into(), "transport".into()],
        text: String::new(),
        code: production_lines("use super::driver::Driver;\n"),
    };
    let found = layering_violations(&[planted], &rules);
    assert_eq!(found.len(), 1, "{found:?}");
}

/// `(file, function, lines)` of every production function longer than the bound.
fn long_functions(sources: &[Source]) -> Vec<(String, String, usize)> {
    let mut found = Vec::new();
    for source in sources {
        let code = &source.code;
        for (start, line) in code.iter().enumerate() {
            let Some(name) = fn_name(line) else {
                continue;
            };
            if !has_body(&code[start..]) {
                continue;
            }
            let indent = &line[..line.len() - line.trim_start().len()];
            let close = format!("{indent}}}");
            let end = code[start..].iter().position(|l| *l == close);
            if let Some(len) = end.map(|e| e + 1) {
                if len > FUNCTION_LINES_MAX {
                    found.push((source.path.clone(), name, len));
                }
            }
        }
    }
    found
}

/// Whether the function whose signature starts `lines` has a body over several lines (not a
/// declaration ending in `;`, not a one-line body).
fn has_body(lines: &[String]) -> bool {
    for line in lines {
        let line = line.trim_end();
        if line.ends_with(';') {
            return false;
        }
        if line.ends_with('{') {
            return true;
        }
        if line.contains('{') {
            return line.matches('{').count() > line.matches('}').count();
        }
    }
    false
}

/// The name of the function a line starts (with a body), if it does.
fn fn_name(line: &str) -> Option<String> {
    let mut words = line.split_whitespace().peekable();
    while let Some(word) = words.peek() {
        let qualifier = word.starts_with("pub")
            || matches!(*word, "async" | "const" | "unsafe" | "extern" | "\"C\"");
        if !qualifier {
            break;
        }
        words.next();
    }
    if words.next()? != "fn" {
        return None;
    }
    let name: String = words
        .next()?
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    Some(name)
}

#[test]
fn production_functions_and_files_stay_short() {
    let sources = sources();
    let mut problems = Vec::new();
    for (file, name, lines) in long_functions(&sources) {
        if !LONG_FUNCTIONS
            .iter()
            .any(|(f, n, _)| *f == file && *n == name)
        {
            problems.push(format!(
                "{file}: fn {name} is {lines} lines (at most {FUNCTION_LINES_MAX})"
            ));
        }
    }
    let root = crate_root();
    let mut files = Vec::new();
    for dir in ["src", "tests", "benches"] {
        rust_files(&root.join(dir), &mut files);
    }
    for file in files {
        let path = file.strip_prefix(&root).expect("under the root");
        let path = path.to_string_lossy().to_string();
        let lines = std::fs::read_to_string(&file)
            .expect("read")
            .lines()
            .count();
        if lines > FILE_LINES_MAX && !LONG_FILES.iter().any(|(f, _)| *f == path) {
            problems.push(format!("{path}: {lines} lines (at most {FILE_LINES_MAX})"));
        }
    }
    assert!(
        problems.is_empty(),
        "split these, or list them with a reason:\n{}",
        problems.join("\n")
    );
    // An exception that no longer applies goes.
    let long: BTreeSet<(String, String)> = long_functions(&sources)
        .into_iter()
        .map(|(f, n, _)| (f, n))
        .collect();
    for (file, name, _) in LONG_FUNCTIONS {
        assert!(
            long.contains(&(file.to_string(), name.to_string())),
            "{file}: fn {name} is short now: unlist it"
        );
    }
}

#[test]
fn the_size_check_measures_a_function_to_its_closing_brace() {
    let body: String = (0..FUNCTION_LINES_MAX)
        .map(|i| format!("        let x{i} = {i};\n"))
        .collect();
    let text = format!("impl X {{\n    pub(crate) async fn long(&self) {{\n{body}    }}\n\n    fn short() {{}}\n}}\n");
    let source = Source {
        path: "src/planted.rs".into(),
        module: vec!["planted".into()],
        code: production_lines(&text),
        text,
    };
    let found = long_functions(&[source]);
    assert_eq!(
        found,
        vec![(
            "src/planted.rs".to_string(),
            "long".to_string(),
            FUNCTION_LINES_MAX + 2
        )]
    );
}
