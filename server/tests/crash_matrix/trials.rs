//! How many SIGKILL trials each scenario runs, and the report each one leaves.
//!
//! `PROVDB_CRASH_TRIALS` overrides every scenario's default (the hardening run,
//! `scripts/harden.sh`, sets 50); when `PROVDB_CRASH_REPORT` names a directory, each scenario
//! writes `<scenario>.json` there with its figures, which `docs/GUARANTEES.md` quotes.
//!
//! A scenario whose kills all landed before or after the work, or that checked no
//! acknowledged item, would pass without testing anything: each one states its [`Minimum`]s
//! and [`Report::finish`] fails when the trials fell short of them.

use std::time::Instant;

use serde_json::json;

/// A quarter of `trials`, and at least one: the fewest trials a scenario must see killed in the
/// middle of its work (kills are random, so a scenario expects several times more).
pub(crate) fn quarter(trials: usize) -> usize {
    (trials / 4).max(1)
}

/// The number of trials: `PROVDB_CRASH_TRIALS`, or `default` (what the test suite runs).
pub(crate) fn trials(default: usize) -> usize {
    std::env::var("PROVDB_CRASH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}

/// What one scenario did: its trials, how many were cut in the middle of the work, how many
/// acknowledged items were checked present after the crash, and how many stored items were
/// checked whole (none was lost or partial, or the scenario would have failed before
/// reporting).
pub(crate) struct Report {
    pub(crate) scenario: &'static str,
    pub(crate) trials: usize,
    pub(crate) interrupted: usize,
    pub(crate) acknowledged_checked: u64,
    pub(crate) whole_checked: u64,
    pub(crate) started: Instant,
}

/// What a scenario's trials must at least have done for the run to count.
pub(crate) struct Minimum {
    /// Trials killed in the middle of the work (what that means is the scenario's).
    pub(crate) interrupted: usize,
    /// Acknowledged items checked present after the kills.
    pub(crate) acknowledged_checked: u64,
}

impl Report {
    pub(crate) fn new(scenario: &'static str, trials: usize) -> Self {
        Self {
            scenario,
            trials,
            interrupted: 0,
            acknowledged_checked: 0,
            whole_checked: 0,
            started: Instant::now(),
        }
    }

    /// Prints the figures and writes them to `$PROVDB_CRASH_REPORT/<scenario>.json`, then fails
    /// when they fall short of `minimum`.
    pub(crate) fn finish(self, minimum: Minimum) {
        let report = json!({
            "scenario": self.scenario,
            "trials": self.trials,
            "killed_mid_work": self.interrupted,
            "min_killed_mid_work": minimum.interrupted,
            "acknowledged_checked": self.acknowledged_checked,
            "min_acknowledged_checked": minimum.acknowledged_checked,
            "whole_checked": self.whole_checked,
            "lost": 0,
            "partial": 0,
            "seconds": self.started.elapsed().as_secs_f64(),
        });
        eprintln!("crash matrix: {report}");
        if let Ok(dir) = std::env::var("PROVDB_CRASH_REPORT") {
            std::fs::create_dir_all(&dir).unwrap();
            let path = std::path::Path::new(&dir).join(format!("{}.json", self.scenario));
            std::fs::write(path, report.to_string()).unwrap();
        }
        assert!(
            self.interrupted >= minimum.interrupted,
            "{}: {} of {} trials were killed mid-work, fewer than {}",
            self.scenario,
            self.interrupted,
            self.trials,
            minimum.interrupted
        );
        assert!(
            self.acknowledged_checked >= minimum.acknowledged_checked,
            "{}: {} acknowledged items checked, fewer than {}",
            self.scenario,
            self.acknowledged_checked,
            minimum.acknowledged_checked
        );
    }
}
