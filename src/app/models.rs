// TEMPORARY stub until the fetcher lands (helper is writing the real module).
use std::path::{Path, PathBuf};
pub struct ModelSpec {
    pub name: &'static str,
    pub file_name: &'static str,
    pub sha256: &'static str,
}
pub const TARGET_DEFAULT: &str = "qwen2.5-coder-1.5b";
pub const DRAFT_DEFAULT: &str = "qwen2.5-coder-0.5b";
pub const TINY: &str = "smollm2-135m";
static SPECS: [ModelSpec; 0] = [];
pub fn specs() -> &'static [ModelSpec] {
    &SPECS
}
pub fn spec(name: &str) -> anyhow::Result<&'static ModelSpec> {
    anyhow::bail!("unknown {name}")
}
pub fn models_dir() -> anyhow::Result<PathBuf> {
    Ok(PathBuf::from("/tmp/seedmodels"))
}
pub fn installed_path(_spec: &ModelSpec, _dir: &Path) -> Option<PathBuf> {
    None
}
pub fn ensure(_spec: &ModelSpec, _dir: &Path, _progress: bool) -> anyhow::Result<PathBuf> {
    anyhow::bail!("stub")
}
pub fn group(name: &str) -> anyhow::Result<Vec<&'static ModelSpec>> {
    anyhow::bail!("unknown {name}")
}
pub fn list(_dir: &Path) -> Vec<String> {
    vec![]
}
