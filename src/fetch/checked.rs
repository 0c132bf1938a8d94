//! Files checked against a pinned SHA-256: hashing (with a progress bar),
//! the `<file>.sha256` marker that records a check, and the permissions of
//! installed files.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

use super::partial;

/// Passes bytes through to `inner` while hashing them and advancing a bar.
pub struct HashingWriter<'a, W: Write> {
    inner: W,
    hasher: Sha256,
    bar: &'a ProgressBar,
}

impl<'a, W: Write> HashingWriter<'a, W> {
    pub fn new(inner: W, bar: &'a ProgressBar) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            bar,
        }
    }

    /// Flushes and returns the lowercase hex SHA-256 of everything written.
    pub fn finish(mut self) -> io::Result<String> {
        self.inner.flush()?;
        Ok(hex(&self.hasher.finalize()))
    }
}

impl<W: Write> Write for HashingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        let done = buf.get(..n).unwrap_or(buf);
        self.hasher.update(done);
        self.bar.inc(done.len() as u64);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

pub fn hash_file(path: &Path, bar: &ProgressBar) -> Result<String> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut sink = HashingWriter::new(io::sink(), bar);
    io::copy(&mut file, &mut sink).with_context(|| format!("reading {}", path.display()))?;
    Ok(sink.finish()?)
}

/// Lowercase hex, as `sha256sum` writes hashes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// `<file>.sha256`, in `sha256sum` format so `sha256sum -c` can check it too.
pub fn marker_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".sha256");
    PathBuf::from(s)
}

pub fn read_marker(path: &Path) -> Option<String> {
    let text = fs::read_to_string(marker_path(path)).ok()?;
    text.split_whitespace().next().map(str::to_string)
}

pub fn write_marker(path: &Path, hash: &str) -> Result<()> {
    let marker = marker_path(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let dir = marker.parent().unwrap_or(Path::new("."));
    // Written aside, synced and renamed, so a reader never sees half a marker.
    let mut tmp = partial::file_in(dir, &format!("{name}.sha256"))?;
    writeln!(tmp, "{hash}  {name}")
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("writing {}", marker.display()))?;
    make_shareable(tmp.as_file(), tmp.path())?;
    tmp.persist(&marker)
        .map_err(|e| e.error)
        .with_context(|| format!("writing {}", marker.display()))?;
    Ok(())
}

/// Installs `dir/file_name` from the bytes `write` gives, hashing them.
/// They go to a partial file in `dir`, synced and renamed into place only
/// when their SHA-256 is `expected` (then the marker is written); if
/// anything fails the partial file is removed, so a wrong or interrupted
/// download never sits under the final name.
pub fn install_checked(
    label: &str,
    dir: &Path,
    file_name: &str,
    expected: &str,
    bar: &ProgressBar,
    write: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<PathBuf> {
    let final_path = dir.join(file_name);
    let mut tmp = partial::file_in(dir, file_name)?;
    let mut sink = HashingWriter::new(
        io::BufWriter::with_capacity(1 << 20, tmp.as_file_mut()),
        bar,
    );
    write(&mut sink)?;
    let actual = sink
        .finish()
        .with_context(|| format!("writing {}", final_path.display()))?;
    if !actual.eq_ignore_ascii_case(expected) {
        // Returning drops `tmp`, which deletes it.
        bail!("SHA-256 mismatch for {label}: expected {expected}, got {actual}; nothing was installed");
    }
    tmp.as_file()
        .sync_all()
        .with_context(|| format!("writing {}", tmp.path().display()))?;
    make_shareable(tmp.as_file(), tmp.path())?;
    // Drop any stale marker before the new file appears, so the two never disagree.
    remove_if_exists(&marker_path(&final_path))?;
    tmp.persist(&final_path)
        .map_err(|e| e.error)
        .with_context(|| format!("moving the verified file to {}", final_path.display()))?;
    write_marker(&final_path, &actual)?;
    Ok(final_path)
}

/// Temporary files are created owner-only (0600); models are not secrets,
/// so installed files get the usual 0644.
pub fn make_shareable(file: &File, path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o644))
            .with_context(|| format!("setting permissions of {}", path.display()))?;
    }
    #[cfg(not(unix))]
    let _ = (file, path);
    Ok(())
}

pub fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

pub fn bytes_bar(show: bool, total: u64, msg: String) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    // ProgressBar draws to stderr, never stdout.
    let bar = ProgressBar::new(total).with_style(style);
    bar.set_message(msg);
    bar
}

/// The lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO_SHA: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    /// Gives some bytes, then fails: a download cut off mid-way.
    struct CutOff(usize);

    impl io::Read for CutOff {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::Error::new(io::ErrorKind::ConnectionReset, "cut off"));
            }
            let n = self.0.min(buf.len());
            buf[..n].fill(b'x');
            self.0 -= n;
            Ok(n)
        }
    }

    fn names_in(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn an_interrupted_download_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let bar = ProgressBar::hidden();
        let err = install_checked("m", dir.path(), "m.gguf", HELLO_SHA, &bar, |sink| {
            io::copy(&mut CutOff(3 << 20), sink).context("downloading m")?;
            Ok(())
        })
        .unwrap_err();
        assert!(format!("{err:#}").contains("cut off"), "{err:#}");
        assert!(
            names_in(dir.path()).is_empty(),
            "{:?}",
            names_in(dir.path())
        );
    }

    #[test]
    fn a_complete_download_is_installed_with_its_marker() {
        let dir = tempfile::tempdir().unwrap();
        let bar = ProgressBar::hidden();
        let path = install_checked("m", dir.path(), "m.gguf", HELLO_SHA, &bar, |sink| {
            Ok(sink.write_all(b"hello")?)
        })
        .unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"hello");
        assert_eq!(read_marker(&path).as_deref(), Some(HELLO_SHA));
        let mut names = names_in(dir.path());
        names.sort();
        assert_eq!(names, ["m.gguf", "m.gguf.sha256"]);
    }
}
