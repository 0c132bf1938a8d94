//! Resolving and loading the target and draft models for a command.

use crate::decode::{Drafter, Engine, EngineConfig, EngineKind, TreeShape, VerifyPolicy};
use crate::fetch::models;
use crate::model::llama::{LlamaLm, LlamaOptions};
use crate::model::Model;
use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;

/// Which models to load and how.
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// Target model: a GGUF path or a known name (default: the default pair).
    #[arg(long)]
    pub target: Option<String>,
    /// Draft model: a GGUF path or a known name.
    #[arg(long)]
    pub draft: Option<String>,
    /// KV cache cells shared by all branches.
    #[arg(long, default_value_t = 8192)]
    pub ctx: usize,
    /// CPU threads (0: all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

impl ModelArgs {
    /// Loads the target and, if wanted, the draft (fetching the default pair on first use).
    pub fn load(&self, need_draft: bool, exact: bool) -> Result<ModelPair> {
        let options = LlamaOptions {
            context: self.ctx,
            threads: self.threads,
            exact,
            ..LlamaOptions::default()
        };
        load_pair(
            self.target.as_deref(),
            self.draft.as_deref(),
            need_draft,
            &options,
        )
    }
}

/// `--engine`: a decoding method, or the URL of an OpenAI-compatible server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EngineChoice {
    Local(EngineKind),
    Remote(String),
}

impl std::str::FromStr for EngineChoice {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if s.starts_with("http://") || s.starts_with("https://") {
            return Ok(EngineChoice::Remote(s.to_string()));
        }
        s.parse().map(EngineChoice::Local).map_err(|_| {
            format!("unknown engine {s:?} (expected ar, sd, mcsd, seed or a server URL such as http://127.0.0.1:8080/v1)")
        })
    }
}

/// The engine options shared by every command that runs a model. Without
/// `--engine` they start from the one default configuration
/// ([`EngineConfig::fastest`]); options given explicitly change it.
#[derive(Args, Debug, Clone)]
pub struct EngineArgs {
    /// ar, sd, mcsd or seed; `seed solve` also takes an OpenAI-compatible
    /// server's URL (http://HOST:PORT/v1). Default: seed with batched
    /// verification, n-gram drafts (past requests' too), adaptive and
    /// cost-aware draft lengths, the fastest configuration measured (README).
    #[arg(long = "engine")]
    pub choice: Option<EngineChoice>,
    #[command(flatten)]
    pub models: ModelArgs,
    /// Draft length of `sd` and `seed` (default 3).
    #[arg(long)]
    pub gamma: Option<usize>,
    /// Draft tree shape, e.g. 2,1,1 (default for mcsd; seed drafts a chain
    /// unless given). A tree has no adaptive or cost-aware length.
    #[arg(long)]
    pub tree: Option<TreeShape>,
    /// How `seed` verifies queued drafts: fcfs or batched (default: batched
    /// without --engine, else fcfs).
    #[arg(long)]
    pub verify: Option<VerifyPolicy>,
    /// Batch-invariant kernels: every engine gives `ar`'s tokens at temperature 0.
    #[arg(long)]
    pub exact: bool,
    /// Do not keep prompt prefixes' KV across requests.
    #[arg(long)]
    pub no_prefix_cache: bool,
    /// Where drafts come from: model, ngram (lookup in the prompt and in
    /// sibling branches' text; no draft model) or ngram+model (lookup first)
    /// (default: ngram without --engine, else model).
    #[arg(long)]
    pub drafter: Option<Drafter>,
    /// Adapt each branch's draft length to its acceptance (chains only; on
    /// without --engine).
    #[arg(long)]
    pub adaptive_gamma: bool,
    /// Verify only the draft tokens likely enough to pay for their rows of
    /// the target forward, learnt from the forwards' times and the branch's
    /// acceptance (chains only; on without --engine).
    #[arg(long)]
    pub cost_aware: bool,
    /// N-gram drafts also from past requests' prompt ends and completions
    /// (a search's calls end alike and answer alike; on without --engine
    /// for n-gram drafters).
    #[arg(long)]
    pub ngram_history: bool,
    /// Decode every sample even where several are bound to be identical
    /// (same prompt at temperature 0); by default one is decoded and copied.
    #[arg(long)]
    pub no_dedup: bool,
}

impl EngineArgs {
    /// The decoding method; an error for a server URL.
    pub fn kind(&self) -> Result<EngineKind> {
        match &self.choice {
            None => Ok(EngineConfig::fastest().kind),
            Some(EngineChoice::Local(kind)) => Ok(*kind),
            Some(EngineChoice::Remote(url)) => anyhow::bail!(
                "--engine {url}: only `seed solve` runs against a server; give ar, sd, mcsd or seed"
            ),
        }
    }

    /// The configuration these options name, checked.
    pub fn config(&self, trace: bool) -> Result<EngineConfig> {
        let mut config = match self.choice {
            None => EngineConfig::fastest(),
            Some(_) => EngineConfig {
                kind: self.kind()?,
                dedup_greedy: true,
                ..EngineConfig::default()
            },
        };
        if let Some(gamma) = self.gamma {
            config.gamma = gamma;
        }
        if let Some(tree) = &self.tree {
            config.tree = Some(tree.clone());
            config.adaptive_gamma = false;
            config.cost_aware = false;
        }
        config.verify = self.verify.unwrap_or(config.verify);
        config.drafter = self.drafter.unwrap_or(config.drafter);
        // Past requests are n-gram sources only for n-gram drafters.
        config.ngram_history &= config.drafter.uses_ngrams();
        config.adaptive_gamma |= self.adaptive_gamma;
        config.cost_aware |= self.cost_aware;
        config.ngram_history |= self.ngram_history;
        config.prefix_cache &= !self.no_prefix_cache;
        config.dedup_greedy &= !self.no_dedup;
        config.trace = trace;
        config.check().map_err(anyhow::Error::msg)?;
        Ok(config)
    }

    /// Loads the models (fetching the default pair on first use) and builds the engine.
    pub fn build(&self, trace: bool) -> Result<Engine> {
        // Checked before loading (or fetching) any model.
        let config = self.config(trace)?;
        let (target, draft) = self.models.load(config.needs_draft_model(), self.exact)?;
        Ok(Engine::new(target, draft, config)?)
    }
}

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

fn load(arg: &str, options: &LlamaOptions) -> Result<Box<dyn Model>> {
    let path = resolve(arg)?;
    let model = LlamaLm::load(&path, options).with_context(|| format!("loading {arg}"))?;
    Ok(Box::new(model))
}

/// A target model and, for speculative engines, a draft.
pub type ModelPair = (Box<dyn Model>, Option<Box<dyn Model>>);

/// The target and (when wanted) the draft: the given ones, else the default pair.
fn load_pair(
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
