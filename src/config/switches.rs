//! The test switches: parts of a node a test turns off to show what they achieve. Read from
//! the environment only (never flags), not in `--help`. Must not import anything outside
//! `config`.

/// The environment names of [`TestSwitches`]' fields; `off`, `0` or `false` switches one off.
const ENV_ANTI_ENTROPY: &str = "MOSTDB_ANTI_ENTROPY";
const ENV_HINTS: &str = "MOSTDB_HINTS";
const ENV_RECOVERY: &str = "MOSTDB_RECOVERY";

/// Parts of a node that a test switches off to show what they achieve (the convergence,
/// handoff and recovery tests, and CI's planted checks): `MOSTDB_ANTI_ENTROPY=off` keeps the
/// node from running passes (it still answers its peers); `MOSTDB_HINTS=off` makes it keep
/// and replay no hints; `MOSTDB_RECOVERY=off` makes it vote at once whatever it lost (the bug
/// recovery prevents). Read from the environment only, never from flags, and not in `--help`:
/// they are not for production.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct TestSwitches {
    pub anti_entropy: bool,
    pub hints: bool,
    pub recovery: bool,
}

impl Default for TestSwitches {
    fn default() -> TestSwitches {
        TestSwitches {
            anti_entropy: true,
            hints: true,
            recovery: true,
        }
    }
}

impl TestSwitches {
    /// Takes `name=value` if `name` is a switch (any value but `off`, `0`, `false` leaves it
    /// on); `false` if `name` is none of them.
    pub(super) fn take(&mut self, name: &str, value: &str) -> bool {
        let field = match name {
            ENV_ANTI_ENTROPY => &mut self.anti_entropy,
            ENV_HINTS => &mut self.hints,
            ENV_RECOVERY => &mut self.recovery,
            _ => return false,
        };
        *field = !matches!(value.trim(), "off" | "0" | "false");
        true
    }

    /// The switched-off parts, as their environment settings (for the start-up log).
    pub fn off(&self) -> Vec<&'static str> {
        [
            (self.anti_entropy, ENV_ANTI_ENTROPY),
            (self.hints, ENV_HINTS),
            (self.recovery, ENV_RECOVERY),
        ]
        .into_iter()
        .filter_map(|(on, name)| (!on).then_some(name))
        .collect()
    }
}
