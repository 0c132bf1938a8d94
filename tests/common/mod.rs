//! Shared helpers for tests on real GGUF models.
#![allow(dead_code)]

use seed::model::llama::{LlamaLm, LlamaOptions};
use std::path::PathBuf;
use std::sync::Mutex;

/// llama.cpp uses every core; tests on real models take turns.
pub static REAL_MODEL_LOCK: Mutex<()> = Mutex::new(());

/// The SmolLM2 GGUF, installed by `seed models fetch tiny` (CI does it first).
pub fn smollm_path() -> PathBuf {
    let dir = seed::app::models::models_dir().expect("models folder");
    let spec = seed::app::models::spec(seed::app::models::TINY).unwrap();
    seed::app::models::installed_path(spec, &dir).unwrap_or_else(|| {
        panic!(
            "SmolLM2 is not installed in {}: run `cargo run --release -- models fetch tiny` first",
            dir.display()
        )
    })
}

pub fn smollm(context: usize) -> LlamaLm {
    let options = LlamaOptions {
        context,
        max_sequences: 64,
        threads: 0,
    };
    LlamaLm::load(&smollm_path(), &options).expect("load SmolLM2")
}
