//! The settings file (`MOSTDB_CONFIG_FILE`): a flat TOML table of the same `MOSTDB_*` names
//! as the environment, e.g. `MOSTDB_LOG_LEVEL = "debug"` or `MOSTDB_TIMEOUT_MS = 2000`.
//! Strings, integers and booleans are taken as their text and validated by the same parsers
//! as the environment. Imports only `config` and std.

use std::io::Read as _;
use std::path::Path;

use super::registry::{ENV_API_KEY_VAULE, SETTINGS};
use super::ConfigError;

/// The settings of a file as `(name, text)` pairs, and warnings about it.
type Read = (Vec<(String, String)>, Vec<String>);

/// The largest settings file read (it holds a few dozen short lines).
pub(super) const CONFIG_FILE_BYTES_MAX: u64 = 256 * 1024;

/// The file's settings as `(name, text)` pairs, and warnings for the names it does not know.
pub(super) fn read(path: &Path) -> Result<Read, ConfigError> {
    let problem = |problem: String| ConfigError::File {
        path: path.display().to_string(),
        problem: one_line(&problem),
    };
    let file = std::fs::File::open(path).map_err(|e| problem(e.to_string()))?;
    let mut text = String::new();
    file.take(CONFIG_FILE_BYTES_MAX + 1)
        .read_to_string(&mut text)
        .map_err(|e| problem(e.to_string()))?;
    if text.len() as u64 > CONFIG_FILE_BYTES_MAX {
        return Err(problem(format!(
            "larger than {CONFIG_FILE_BYTES_MAX} bytes"
        )));
    }
    parse(&text).map_err(problem)
}

/// The settings of a file's text; `Err` names the first problem.
pub(super) fn parse(text: &str) -> Result<Read, String> {
    let table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut entries = Vec::new();
    let mut warnings = Vec::new();
    for (name, value) in table {
        if value.is_table() {
            return Err(format!(
                "[{name}]: settings go at the top level, not in a table"
            ));
        }
        let known = SETTINGS.iter().any(|spec| spec.env == name) || name == ENV_API_KEY_VAULE;
        if !known {
            warnings.push(format!(
                "unknown setting {name} in the settings file ignored"
            ));
            continue;
        }
        let text = match value {
            toml::Value::String(text) => text.trim().to_string(),
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            _ => {
                return Err(format!(
                    "{name}: expected a string, an integer or a boolean"
                ))
            }
        };
        // As in the environment, an empty value counts as unset.
        if !text.is_empty() {
            entries.push((name, text));
        }
    }
    Ok((entries, warnings))
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
