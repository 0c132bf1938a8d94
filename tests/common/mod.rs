//! Shared helpers for tests on real GGUF models (and a slowed tiny model).
#![allow(dead_code)]

pub mod slow;

use seed::model::llama::{LlamaLm, LlamaOptions};
use std::path::PathBuf;
use std::sync::Mutex;

/// llama.cpp uses every core; tests on real models take turns.
pub static REAL_MODEL_LOCK: Mutex<()> = Mutex::new(());

/// A known model's GGUF, fetched on first use (once per test binary).
pub fn model_path(name: &str) -> PathBuf {
    static FETCH: Mutex<()> = Mutex::new(());
    let _once = FETCH.lock().unwrap_or_else(|e| e.into_inner());
    let dir = seed::fetch::models::models_dir().expect("models folder");
    let spec = seed::fetch::models::spec(name).unwrap();
    seed::fetch::models::ensure(spec, &dir, false)
        .unwrap_or_else(|e| panic!("cannot install {name} in {}: {e:#}", dir.display()))
}

pub fn smollm_path() -> PathBuf {
    model_path(seed::fetch::models::TINY)
}

pub fn smollm(context: usize) -> LlamaLm {
    load_smollm(context, false)
}

/// SmolLM2 with batch-invariant kernels.
#[allow(dead_code)]
pub fn smollm_exact(context: usize) -> LlamaLm {
    load_smollm(context, true)
}

fn load_smollm(context: usize, exact: bool) -> LlamaLm {
    let options = LlamaOptions {
        context,
        max_sequences: 64,
        threads: 0,
        exact,
    };
    LlamaLm::load(&smollm_path(), &options).expect("load SmolLM2")
}
