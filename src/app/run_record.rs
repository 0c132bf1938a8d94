//! What a `seed solve` run has solved, kept in its output folder (`run.json`)
//! beside the trees: with `--resume` a long range run that was stopped goes
//! on where it was, and its totals count the problems solved before, as long
//! as the settings are the same.

use super::util::write_atomic;
use crate::search::tree::Ranking;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

const FILE: &str = "run.json";

/// One problem's result, as the totals and the printed line need it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Solved {
    pub label: String,
    /// The problem's text, so a record never stands for another problem.
    pub problem: String,
    pub answer: Option<String>,
    pub verdict: String,
    pub right: bool,
    pub wall_s: f64,
    pub tokens: usize,
    pub ranking: Ranking,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct RunRecord {
    /// What the problems were solved with: task, search settings, target.
    settings: serde_json::Value,
    solved: Vec<Solved>,
    #[serde(skip)]
    path: PathBuf,
}

impl RunRecord {
    /// The record in `dir` if it was made with `settings`, else a new one
    /// (which replaces the old when first saved). With `resume`, a record
    /// of other settings is an error, as is one that cannot be read.
    pub fn open(dir: &Path, settings: serde_json::Value, resume: bool) -> Result<Self> {
        let path = dir.join(FILE);
        let fresh = RunRecord {
            settings: settings.clone(),
            solved: Vec::new(),
            path: path.clone(),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(fresh),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let old: RunRecord = match serde_json::from_str(&text) {
            Ok(old) => old,
            Err(e) if resume => bail!("--resume: {} cannot be read: {e}", path.display()),
            Err(_) => return Ok(fresh),
        };
        if old.settings != settings {
            if resume {
                bail!(
                    "--resume: {} was made with other settings ({}); resume with those, or use another --out",
                    path.display(),
                    old.settings
                );
            }
            return Ok(fresh);
        }
        Ok(RunRecord { path, ..old })
    }

    /// The earlier result of problem `label`, if it was the same problem.
    pub fn find(&self, label: &str, problem: &str) -> Option<&Solved> {
        (self.solved.iter()).find(|s| s.label == label && s.problem == problem)
    }

    /// Records a result (replacing an earlier one of that problem) and saves.
    pub fn add(&mut self, solved: Solved) -> Result<()> {
        self.solved.retain(|s| s.label != solved.label);
        self.solved.push(solved);
        write_atomic(&self.path, &serde_json::to_vec_pretty(self)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn solved(label: &str) -> Solved {
        Solved {
            label: label.into(),
            problem: format!("problem {label}"),
            answer: Some("24".into()),
            verdict: "right".into(),
            right: true,
            wall_s: 1.5,
            tokens: 10,
            ranking: Ranking::default(),
        }
    }

    #[test]
    fn a_resumed_run_finds_what_the_same_settings_solved() {
        let dir = tempfile::tempdir().unwrap();
        let settings = json!({"task": "game24", "k": 20});
        let mut record = RunRecord::open(dir.path(), settings.clone(), true).unwrap();
        assert!(record.find("900", "problem 900").is_none());
        record.add(solved("900")).unwrap();

        let record = RunRecord::open(dir.path(), settings.clone(), true).unwrap();
        assert_eq!(record.find("900", "problem 900").unwrap().tokens, 10);
        // Another problem under the same label is not it.
        assert!(record.find("900", "another problem").is_none());

        let other = json!({"task": "game24", "k": 5});
        let err = RunRecord::open(dir.path(), other.clone(), true).unwrap_err();
        assert!(err.to_string().contains("other settings"), "{err}");
        // Without --resume other settings start a new record.
        let record = RunRecord::open(dir.path(), other, false).unwrap();
        assert!(record.find("900", "problem 900").is_none());
    }

    #[test]
    fn an_unreadable_record_is_an_error_only_when_resuming() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), "{ half").unwrap();
        let err = RunRecord::open(dir.path(), json!({}), true).unwrap_err();
        assert!(err.to_string().contains("cannot be read"), "{err}");
        assert!(RunRecord::open(dir.path(), json!({}), false).is_ok());
    }
}
