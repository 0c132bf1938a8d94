//! Names for what a fetch writes before it is checked and renamed into
//! place, and cleaning what a killed process left of them.
//!
//! A partial file is removed when its fetch fails or returns (`tempfile`
//! removes it on drop), but a process killed mid-download leaves it behind.
//! The names carry the process id, so the next fetch removes the leftovers
//! of processes that are gone and never a live download's.

use std::fs;
use std::io;
use std::path::Path;

use anyhow::{Context, Result};

const MARK: &str = ".seed-partial.";

/// The prefix for a temporary file or folder of `label` made by this process.
pub fn prefix(label: &str) -> String {
    format!("{MARK}{}.{label}.", std::process::id())
}

/// A partial file of `label` in `dir`, removed on drop unless persisted.
pub fn file_in(dir: &Path, label: &str) -> Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix(&prefix(label))
        .suffix(".partial")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))
}

/// A partial folder of `label` in `dir`, removed with its files on drop.
pub fn dir_in(dir: &Path, label: &str) -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(&prefix(label))
        .suffix(".partial")
        .tempdir_in(dir)
        .with_context(|| format!("creating a download folder in {}", dir.display()))
}

/// Removes the partial files and folders in `dir` whose process is gone.
pub fn clean_stale(dir: &Path) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        r => r.with_context(|| format!("reading {}", dir.display()))?,
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let name = entry.file_name();
        let Some(pid) = owner(&name.to_string_lossy()) else {
            continue;
        };
        if is_running(pid) {
            continue;
        }
        let path = entry.path();
        let removed = if entry.file_type().is_ok_and(|t| t.is_dir()) {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        match removed {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(e).with_context(|| {
                    format!("removing {}, left by an interrupted fetch", path.display())
                })
            }
            _ => {}
        }
    }
    Ok(())
}

/// The process that made a partial file, from its name.
fn owner(name: &str) -> Option<u32> {
    name.strip_prefix(MARK)?.split('.').next()?.parse().ok()
}

fn is_running(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    #[cfg(target_os = "linux")]
    return Path::new("/proc").join(pid.to_string()).exists();
    // Elsewhere there is no cheap check: leave the file rather than risk a live download.
    #[cfg(not(target_os = "linux"))]
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pid no process has: above Linux's largest (2^22).
    const GONE: u32 = 4_194_304 + 17;

    #[cfg(target_os = "linux")]
    #[test]
    fn stale_partial_files_and_folders_are_removed_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let stale_file = dir.path().join(format!("{MARK}{GONE}.m.gguf.abc.partial"));
        let stale_dir = dir
            .path()
            .join(format!("{MARK}{GONE}.seed-wheels.xyz.partial"));
        fs::write(&stale_file, b"half a model").unwrap();
        fs::create_dir(&stale_dir).unwrap();
        fs::write(stale_dir.join("a.whl"), b"zip").unwrap();
        let live = file_in(dir.path(), "m.gguf").unwrap();
        let other = dir.path().join("m.gguf");
        fs::write(&other, b"installed").unwrap();

        clean_stale(dir.path()).unwrap();

        assert!(!stale_file.exists() && !stale_dir.exists());
        assert!(live.path().exists(), "this process's own download is kept");
        assert!(other.exists(), "installed files are kept");
        clean_stale(&dir.path().join("missing")).unwrap();
    }

    #[test]
    fn owners_are_read_from_names() {
        assert_eq!(
            owner(&format!("{}x.abc", prefix("m.gguf"))),
            Some(std::process::id())
        );
        assert_eq!(owner(".seed-partial.12.m"), Some(12));
        assert_eq!(owner(".seed-partial.m.12"), None);
        assert_eq!(owner("m.gguf"), None);
    }
}
