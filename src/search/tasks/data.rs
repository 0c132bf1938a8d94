//! Where the datasets come from, and loaders for one problem of each task.
//!
//! Folders are searched in order: `--data DIR` or `$SEED_DATA` alone when
//! given; otherwise every `../shared/datasets` that exists beside the current
//! directory or beside one of the executable's ancestors, then the folder that
//! `seed data fetch` installs into (`<user cache dir>/seed/datasets`). Inside a
//! folder the layout is that of `../shared/datasets` (see its README).

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use super::blocksworld::{Blocksworld, Domain, Problem};

pub const GSM8K: &str = "gsm8k/test.jsonl";
pub const GAME24: &str = "tot/24/24.csv";
pub const TEXT: &str = "tot/text/data_100_random_text.txt";
pub const BLOCKSWORLD_DOMAIN: &str =
    "blocksworld/planbench/instances/blocksworld/generated_domain.pddl";
pub const BLOCKSWORLD_INSTANCES: &str = "blocksworld/planbench/instances/blocksworld";
pub const BLOCKSWORLD_CONFIG: &str = "blocksworld/planbench/configs/blocksworld.yaml";
/// The RAP split files, concatenated in this order (by plan length) for indexing.
pub const BLOCKSWORLD_SPLITS: [&str; 6] = [
    "blocksworld/rap/split_v1/split_v1_step_2_data.json",
    "blocksworld/rap/split_v1/split_v1_step_4_data.json",
    "blocksworld/rap/split_v1/split_v1_step_6_data.json",
    "blocksworld/rap/split_v1/split_v1_step_8_data.json",
    "blocksworld/rap/split_v1/split_v1_step_10_data.json",
    "blocksworld/rap/split_v1/split_v1_step_12_data.json",
];
/// Files that `seed data fetch` installs (from the tree-of-thoughts-llm wheel).
pub const FETCHABLE: [&str; 4] = [
    GAME24,
    TEXT,
    "tot/crosswords/mini0505.json",
    "tot/crosswords/mini0505_0_100_5.json",
];

/// The folders that may hold the datasets, searched in order.
#[derive(Debug, Clone)]
pub struct DataDir {
    roots: Vec<PathBuf>,
}

impl DataDir {
    /// `explicit` is `--data DIR`; without it `$SEED_DATA`, then the defaults.
    pub fn resolve(explicit: Option<&Path>) -> Self {
        let cwd = std::env::current_dir().ok();
        let exe = std::env::current_exe().ok();
        Self::resolve_from(
            explicit.map(Path::to_path_buf),
            std::env::var_os("SEED_DATA"),
            cwd,
            exe,
            install_dir(),
        )
    }

    fn resolve_from(
        explicit: Option<PathBuf>,
        env: Option<OsString>,
        cwd: Option<PathBuf>,
        exe: Option<PathBuf>,
        installed: Option<PathBuf>,
    ) -> Self {
        if let Some(dir) = explicit.or_else(|| env.filter(|v| !v.is_empty()).map(PathBuf::from)) {
            return Self::at(dir);
        }
        let mut roots: Vec<PathBuf> = Vec::new();
        let bases = cwd.into_iter().chain(
            exe.iter()
                .flat_map(|e| e.ancestors().skip(1).map(Path::to_path_buf)),
        );
        for base in bases {
            let candidate = base.join("..").join("shared").join("datasets");
            if candidate.is_dir() {
                let key = candidate
                    .canonicalize()
                    .unwrap_or_else(|_| candidate.clone());
                if !roots
                    .iter()
                    .any(|r| r.canonicalize().unwrap_or_else(|_| r.clone()) == key)
                {
                    roots.push(candidate);
                }
            }
        }
        roots.extend(installed);
        Self { roots }
    }

    /// Only this folder.
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Self {
            roots: vec![dir.into()],
        }
    }

    pub fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    /// The first existing `root/rel`; the error lists every path tried and how to get the file.
    pub fn find(&self, rel: &str) -> Result<PathBuf> {
        if let Some(path) = self.roots.iter().map(|r| r.join(rel)).find(|p| p.exists()) {
            return Ok(path);
        }
        let tried: Vec<String> = self
            .roots
            .iter()
            .map(|r| format!("  {}", r.join(rel).display()))
            .collect();
        let tried = if tried.is_empty() {
            "  (no data folder is known here)".to_string()
        } else {
            tried.join("\n")
        };
        let how = if FETCHABLE.iter().any(|f| rel.starts_with(f)) {
            "run `seed data fetch` to install it, or pass --data DIR (or set SEED_DATA) \
             to a folder laid out like ../shared/datasets"
        } else {
            "`seed data fetch` installs only the Tree-of-Thoughts files; pass --data DIR \
             (or set SEED_DATA) to a folder laid out like ../shared/datasets that has it"
        };
        bail!("data file {rel} not found; looked in:\n{tried}\n{how}")
    }

    fn read(&self, rel: &str) -> Result<(PathBuf, String)> {
        let path = self.find(rel)?;
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        Ok((path, text))
    }
}

/// Where `seed data fetch` installs: `<user cache dir>/seed/datasets`.
pub fn install_dir() -> Option<PathBuf> {
    dirs::cache_dir().map(|c| c.join("seed").join("datasets"))
}

fn out_of_range(what: &str, index: usize, count: usize, path: &Path) -> anyhow::Error {
    anyhow!(
        "{what} index {index} is out of range: {} has {count} problems (0..{count})",
        path.display()
    )
}

fn gsm8k_lines(dir: &DataDir) -> Result<(PathBuf, Vec<String>)> {
    let (path, text) = dir.read(GSM8K)?;
    let lines = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    Ok((path, lines))
}

/// GSM8K test problem `index`: the question and the gold answer (the number after `#### `).
pub fn gsm8k(dir: &DataDir, index: usize) -> Result<(String, String)> {
    #[derive(serde::Deserialize)]
    struct Row {
        question: String,
        answer: String,
    }
    let (path, lines) = gsm8k_lines(dir)?;
    let line = lines
        .get(index)
        .ok_or_else(|| out_of_range("GSM8K", index, lines.len(), &path))?;
    let row: Row = serde_json::from_str(line)
        .with_context(|| format!("{} line {}", path.display(), index + 1))?;
    let gold = super::gsm8k::gold_answer(&row.answer).to_string();
    Ok((row.question, gold))
}

pub fn gsm8k_count(dir: &DataDir) -> Result<usize> {
    Ok(gsm8k_lines(dir)?.1.len())
}

/// The `Puzzles` column of ToT's 24.csv, one entry per data row.
fn game24_rows(dir: &DataDir) -> Result<(PathBuf, Vec<String>)> {
    let (path, text) = dir.read(GAME24)?;
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let column = header
        .split(',')
        .position(|h| h.trim() == "Puzzles")
        .ok_or_else(|| anyhow!("{} has no Puzzles column", path.display()))?;
    let rows = lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split(',').nth(column).unwrap_or("").trim().to_string())
        .collect();
    Ok((path, rows))
}

/// Game of 24 puzzle `index` (the CSV's data row; ToT tests rows 900..1000).
pub fn game24(dir: &DataDir, index: usize) -> Result<String> {
    let (path, rows) = game24_rows(dir)?;
    rows.get(index)
        .cloned()
        .ok_or_else(|| out_of_range("Game of 24", index, rows.len(), &path))
}

pub fn game24_count(dir: &DataDir) -> Result<usize> {
    Ok(game24_rows(dir)?.1.len())
}

fn text_lines(dir: &DataDir) -> Result<(PathBuf, Vec<String>)> {
    let (path, text) = dir.read(TEXT)?;
    let lines = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_string())
        .collect();
    Ok((path, lines))
}

/// Creative Writing input `index`: four sentences.
pub fn text(dir: &DataDir, index: usize) -> Result<String> {
    let (path, lines) = text_lines(dir)?;
    lines
        .get(index)
        .cloned()
        .ok_or_else(|| out_of_range("Creative Writing", index, lines.len(), &path))
}

pub fn text_count(dir: &DataDir) -> Result<usize> {
    Ok(text_lines(dir)?.1.len())
}

/// One Blocksworld problem of the RAP split.
#[derive(Debug, Clone)]
pub struct BlocksworldInstance {
    pub path: PathBuf,
    pub domain: Domain,
    pub problem: Problem,
    /// The gold plan, one PDDL action per entry, e.g. "(unstack b c)".
    pub gold_plan: Vec<String>,
    /// The optimal plan length.
    pub length: usize,
}

impl BlocksworldInstance {
    /// The task; steps are the gold length unless `max_steps` is given.
    pub fn task(&self, max_steps: Option<usize>) -> Result<Blocksworld> {
        Ok(Blocksworld::new(
            self.domain.clone(),
            self.problem.clone(),
            max_steps.unwrap_or(self.length),
        ))
    }
}

type SplitEntry = (String, String, usize);

fn blocksworld_entries(dir: &DataDir) -> Result<Vec<(PathBuf, SplitEntry)>> {
    let mut all = Vec::new();
    for rel in BLOCKSWORLD_SPLITS {
        let (path, text) = dir.read(rel)?;
        let entries: Vec<SplitEntry> =
            serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
        all.extend(entries.into_iter().map(|e| (path.clone(), e)));
    }
    Ok(all)
}

/// Blocksworld problem `index` of the RAP split files concatenated in
/// [`BLOCKSWORLD_SPLITS`] order (2-step plans first, 12-step last).
pub fn blocksworld(dir: &DataDir, index: usize) -> Result<BlocksworldInstance> {
    let entries = blocksworld_entries(dir)?;
    let count = entries.len();
    let (split, (instance, plan, length)) = entries.into_iter().nth(index).ok_or_else(|| {
        anyhow!("Blocksworld index {index} is out of range: the RAP split has {count} problems")
    })?;
    let tail = instance
        .split_once("instances/blocksworld/")
        .map(|(_, tail)| tail)
        .ok_or_else(|| {
            anyhow!(
                "{}: instance path '{instance}' has no instances/blocksworld/",
                split.display()
            )
        })?;
    let (path, problem) = dir.read(&format!("{BLOCKSWORLD_INSTANCES}/{tail}"))?;
    let problem =
        Problem::parse(&problem).with_context(|| format!("reading {}", path.display()))?;
    let (domain_path, domain) = dir.read(BLOCKSWORLD_DOMAIN)?;
    let domain =
        Domain::parse(&domain).with_context(|| format!("reading {}", domain_path.display()))?;
    Ok(BlocksworldInstance {
        path,
        domain,
        problem,
        gold_plan: plan
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect(),
        length,
    })
}

pub fn blocksworld_count(dir: &DataDir) -> Result<usize> {
    Ok(blocksworld_entries(dir)?.len())
}

/// The datasets as CI has them: `../shared/datasets` beside the repository.
/// Tests that need them fail loudly when they are missing.
#[cfg(test)]
pub(crate) fn test_data_dir() -> DataDir {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets");
    assert!(
        dir.is_dir(),
        "these tests read the datasets at {}, which is missing; put the shared datasets there",
        dir.display()
    );
    DataDir::at(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::task::Task;

    #[test]
    fn loaders_read_the_shared_datasets() {
        let dir = test_data_dir();
        let (q, gold) = gsm8k(&dir, 0).unwrap();
        assert!(q.starts_with("Janet") && gold == "18", "{q} {gold}");
        assert_eq!(gsm8k_count(&dir).unwrap(), 1319);
        // Row 900 counts data rows from 0, as ToT indexes them (its Rank is 901).
        assert_eq!(game24(&dir, 900).unwrap(), "4 5 6 10");
        assert_eq!(game24(&dir, 0).unwrap(), "1 1 4 6");
        assert_eq!(game24_count(&dir).unwrap(), 1362);
        assert_eq!(text_count(&dir).unwrap(), 100);
        for i in 0..100 {
            let t = super::super::text::Text::new(&text(&dir, i).unwrap()).unwrap();
            // Five lines run a truncated sentence into the next one.
            let want = if [5, 28, 49, 59, 81].contains(&i) {
                3
            } else {
                4
            };
            assert_eq!(t.sentences().len(), want, "line {i}: {:?}", t.sentences());
        }
        let b = blocksworld(&dir, 0).unwrap();
        assert_eq!(b.length, 2);
        assert!(b.path.ends_with("generated_basic/instance-41.pddl"));
        assert_eq!(b.gold_plan, ["(unstack b c)", "(stack b d)"]);
        assert_eq!(blocksworld(&dir, 589).unwrap().length, 12);
        assert_eq!(b.task(Some(6)).unwrap().steps(), 6);
        for (i, input) in (900..1000).map(|i| (i, game24(&dir, i).unwrap())) {
            super::super::game24::Game24::new(&input).unwrap_or_else(|e| panic!("row {i}: {e}"));
        }
    }

    #[test]
    fn out_of_range_is_an_error() {
        let dir = test_data_dir();
        let err = game24(&dir, 5000).unwrap_err().to_string();
        assert!(err.contains("5000") && err.contains("1362"), "{err}");
        assert!(blocksworld(&dir, 590)
            .unwrap_err()
            .to_string()
            .contains("590 problems"));
        assert!(gsm8k(&dir, 1319).is_err() && text(&dir, 100).is_err());
    }

    #[test]
    fn missing_files_name_every_path_tried() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let dir = DataDir {
            roots: vec![a.path().to_path_buf(), b.path().to_path_buf()],
        };
        let err = game24(&dir, 0).unwrap_err().to_string();
        assert!(
            err.contains(&a.path().join(GAME24).display().to_string()),
            "{err}"
        );
        assert!(
            err.contains(&b.path().join(GAME24).display().to_string()),
            "{err}"
        );
        assert!(
            err.contains("seed data fetch") && err.contains("--data"),
            "{err}"
        );
        let err = gsm8k(&dir, 0).unwrap_err().to_string();
        assert!(
            err.contains(&a.path().join(GSM8K).display().to_string()),
            "{err}"
        );
        assert!(
            err.contains("installs only") && err.contains("--data"),
            "{err}"
        );
        let err = DataDir { roots: vec![] }
            .find(TEXT)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no data folder"), "{err}");
    }

    #[test]
    fn resolution_order() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("work/repo");
        let shared = tmp.path().join("work/shared/datasets");
        fs::create_dir_all(repo.join("target/release")).unwrap();
        fs::create_dir_all(&shared).unwrap();
        let installed = Some(PathBuf::from("/cache/seed/datasets"));
        let exe = Some(repo.join("target/release/seed"));
        let roots = |explicit: Option<&str>, env: Option<&str>, cwd: Option<PathBuf>| {
            DataDir::resolve_from(
                explicit.map(PathBuf::from),
                env.map(OsString::from),
                cwd,
                exe.clone(),
                installed.clone(),
            )
            .roots
        };
        assert_eq!(roots(Some("/d"), Some("/e"), None), [PathBuf::from("/d")]);
        assert_eq!(roots(None, Some("/e"), None), [PathBuf::from("/e")]);
        // The executable's ancestor `repo` has ../shared/datasets; cwd `repo` too (deduplicated).
        let found = roots(None, Some(""), Some(repo.clone()));
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(
            found[0].canonicalize().unwrap(),
            shared.canonicalize().unwrap()
        );
        assert_eq!(found[1], PathBuf::from("/cache/seed/datasets"));
        let lone = DataDir::resolve_from(None, None, Some(tmp.path().into()), None, None).roots;
        assert!(lone.is_empty(), "{lone:?}");
    }
}
