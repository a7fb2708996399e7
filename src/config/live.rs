//! Settings that change while the node runs (DESIGN §12): one snapshot behind a generation
//! counter ([`Live`]); each core keeps its own copy ([`View`]) and re-reads the snapshot only
//! when the counter moved, so the request path reads one atomic and no lock. A change is
//! validated by the same parsers as at start, all or nothing: restart-only names are refused
//! and nothing is applied. Imports only `config` and std.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::registry::{self, Reload, REDACTED, SETTINGS};
use super::{build, ConfigError, Given, Inputs, Settings};

/// Most settings one change may name (every setting once, and the misspelt alias).
pub const CHANGE_NAMES_MAX: usize = registry::KEY_COUNT + 1;

/// One setting to change: its `MOSTDB_*` name and its new value as text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub name: String,
    pub value: String,
}

/// Why a change was refused; nothing of it was applied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChangeError {
    #[error("unknown settings: {}", .0.join(", "))]
    Unknown(Vec<String>),
    /// Settings read only at start (the names), and why.
    #[error("{detail}")]
    RestartRequired { names: Vec<String>, detail: String },
    /// A value its parser refuses (the message names the setting).
    #[error("{0}")]
    Invalid(ConfigError),
    /// A hook could not prepare the change (e.g. persist the largest timeout).
    #[error("{0}")]
    Failed(String),
}

/// One setting as `GET /admin/config` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettingState {
    pub name: &'static str,
    /// Secrets that are set show as [`REDACTED`].
    pub value: String,
    pub reloadable: bool,
}

/// Runs before a change is applied, with the new settings; an error refuses the change.
type Before = Box<dyn Fn(&Settings) -> Result<(), String> + Send>;
/// Runs after a change is applied, with the old and the new settings.
type After = Box<dyn Fn(&Settings, &Settings) + Send>;

#[derive(Default)]
struct Hooks {
    before: Vec<Before>,
    after: Vec<After>,
}

/// The node's settings now, shared by every core.
pub struct Live {
    generation: AtomicU64,
    current: Mutex<Arc<Settings>>,
    /// Held for a whole change, so changes apply one after another.
    hooks: Mutex<Hooks>,
}

impl Live {
    pub fn new(settings: Settings) -> Arc<Live> {
        let settings = Arc::new(settings);
        Arc::new(Live {
            generation: AtomicU64::new(0),
            current: Mutex::new(settings),
            hooks: Mutex::new(Hooks::default()),
        })
    }

    pub fn current(&self) -> Arc<Settings> {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How many changes were applied since start.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// A core's own copy.
    pub fn view(self: &Arc<Self>) -> View {
        View {
            live: self.clone(),
            seen: Cell::new(self.generation()),
            cached: RefCell::new(Rc::new((*self.current()).clone())),
        }
    }

    /// `hook` runs before every change, with the new settings; its error refuses the change.
    pub fn before_change(&self, hook: impl Fn(&Settings) -> Result<(), String> + Send + 'static) {
        self.lock_hooks().before.push(Box::new(hook));
    }

    /// `hook` runs after every change, with the old and the new settings.
    pub fn on_change(&self, hook: impl Fn(&Settings, &Settings) + Send + 'static) {
        self.lock_hooks().after.push(Box::new(hook));
    }

    fn lock_hooks(&self) -> std::sync::MutexGuard<'_, Hooks> {
        self.hooks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every setting with its value now (secrets redacted), in the table's order.
    pub fn states(&self) -> Vec<SettingState> {
        describe(&self.current())
    }

    /// Applies `changes` all or nothing; the names of the settings whose value changed.
    pub fn apply(&self, changes: &[Change]) -> Result<Vec<&'static str>, ChangeError> {
        let hooks = self.lock_hooks();
        let old = self.current();
        let new = changed(&old, changes)?;
        for before in &hooks.before {
            before(&new).map_err(ChangeError::Failed)?;
        }
        let names = differing(&old, &new);
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Arc::new(new.clone());
        self.generation.fetch_add(1, Ordering::AcqRel);
        for after in &hooks.after {
            after(&old, &new);
        }
        Ok(names)
    }

    /// A re-read of the sources (SIGHUP): applies what changed between `before` and `after`
    /// among the runtime settings; returns their names and those of the restart-only settings
    /// that changed too (ignored until a restart).
    pub fn reload(
        &self,
        before: &Settings,
        after: &Settings,
    ) -> Result<(Vec<&'static str>, Vec<&'static str>), ChangeError> {
        let mut changes = Vec::new();
        let mut ignored = Vec::new();
        for name in differing(before, after) {
            let spec = spec_of(name).ok_or_else(|| ChangeError::Unknown(vec![name.into()]))?;
            match spec.reload {
                Reload::Runtime => changes.push(Change {
                    name: name.to_string(),
                    value: registry::render(after, spec.key),
                }),
                Reload::Restart => ignored.push(name),
            }
        }
        let applied = self.apply(&changes)?;
        Ok((applied, ignored))
    }
}

/// One core's copy of the settings, re-read when the generation moved.
pub struct View {
    live: Arc<Live>,
    seen: Cell<u64>,
    cached: RefCell<Rc<Settings>>,
}

impl View {
    /// The settings now: one atomic load, and a copy only after a change.
    pub fn get(&self) -> Rc<Settings> {
        let generation = self.live.generation();
        if generation != self.seen.get() {
            *self.cached.borrow_mut() = Rc::new((*self.live.current()).clone());
            self.seen.set(generation);
        }
        self.cached.borrow().clone()
    }

    pub fn live(&self) -> &Arc<Live> {
        &self.live
    }
}

/// Every setting of `settings` with its value (secrets redacted) and whether it can change.
pub fn describe(settings: &Settings) -> Vec<SettingState> {
    SETTINGS
        .iter()
        .map(|spec| {
            let value = registry::render(settings, spec.key);
            let value = match registry::is_secret(spec.key) && !value.is_empty() {
                true => REDACTED.to_string(),
                false => value,
            };
            SettingState {
                name: spec.env,
                value,
                reloadable: spec.reload == Reload::Runtime,
            }
        })
        .collect()
}

fn spec_of(name: &str) -> Option<&'static registry::Spec> {
    SETTINGS.iter().find(|spec| spec.env == name)
}

/// The names of the settings whose value differs.
fn differing(a: &Settings, b: &Settings) -> Vec<&'static str> {
    SETTINGS
        .iter()
        .filter(|spec| registry::render(a, spec.key) != registry::render(b, spec.key))
        .map(|spec| spec.env)
        .collect()
}

/// `current` with `changes`, validated as at start; refused whole on any problem.
fn changed(current: &Settings, changes: &[Change]) -> Result<Settings, ChangeError> {
    let unknown: Vec<String> = changes
        .iter()
        .filter(|c| spec_of(&c.name).is_none())
        .map(|c| c.name.clone())
        .collect();
    if !unknown.is_empty() {
        return Err(ChangeError::Unknown(unknown));
    }
    let restart: Vec<String> = changes
        .iter()
        .filter(|c| spec_of(&c.name).is_some_and(|spec| spec.reload == Reload::Restart))
        .map(|c| c.name.clone())
        .collect();
    if !restart.is_empty() {
        let detail = format!(
            "read only at start, change them and restart: {}",
            restart.join(", ")
        );
        return Err(ChangeError::RestartRequired {
            names: restart,
            detail,
        });
    }
    let mut inputs = Inputs::empty(current.threads);
    inputs.test_switches = current.test_switches;
    for spec in &SETTINGS {
        inputs.given[spec.key as usize] = Some(Given {
            name: spec.env.to_string(),
            value: registry::render(current, spec.key),
        });
    }
    for change in changes {
        if let Some(spec) = spec_of(&change.name) {
            inputs.given[spec.key as usize] = Some(Given {
                name: change.name.clone(),
                value: change.value.trim().to_string(),
            });
        }
    }
    build(&inputs).map_err(ChangeError::Invalid)
}

#[cfg(test)]
#[path = "live_tests.rs"]
mod tests;
