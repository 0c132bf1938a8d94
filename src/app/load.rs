//! Resolving and loading the target and draft models for a command.

use super::models;
use crate::model::llama::{LlamaLm, LlamaOptions};
use crate::model::Model;
use anyhow::{Context, Result};
use std::path::PathBuf;

/// A model given on the command line: a GGUF path or a known model's name
/// (installed on first use).
pub fn resolve(arg: &str) -> Result<PathBuf> {
    if let Ok(spec) = models::spec(arg) {
        if !std::path::Path::new(arg).exists() {
            return models::ensure(spec, &models::models_dir()?, true);
        }
    }
    let path = PathBuf::from(arg);
    if !path.exists() {
        anyhow::bail!(
            "model file {} does not exist (give a GGUF path or one of: {})",
            path.display(),
            models::specs()
                .iter()
                .map(|s| s.name)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(path)
}

pub fn load(arg: &str, options: &LlamaOptions) -> Result<Box<dyn Model>> {
    let path = resolve(arg)?;
    let model = LlamaLm::load(&path, options).with_context(|| format!("loading {arg}"))?;
    Ok(Box::new(model))
}

/// A target model and, for speculative engines, a draft.
pub type ModelPair = (Box<dyn Model>, Option<Box<dyn Model>>);

/// The target and (when wanted) the draft: the given ones, else the default pair.
pub fn load_pair(
    target: Option<&str>,
    draft: Option<&str>,
    need_draft: bool,
    options: &LlamaOptions,
) -> Result<ModelPair> {
    let target_arg = target.unwrap_or(models::TARGET_DEFAULT);
    let draft_arg = match (target, draft) {
        (_, Some(d)) => Some(d),
        (None, None) => Some(models::DRAFT_DEFAULT),
        (Some(_), None) => None,
    };
    let target = load(target_arg, options)?;
    let draft = match draft_arg {
        Some(d) if need_draft => Some(load(d, options)?),
        _ => None,
    };
    if need_draft && draft.is_none() {
        anyhow::bail!(
            "this engine needs a draft model: give --draft with a GGUF path or model name"
        );
    }
    Ok((target, draft))
}
