//! What can go wrong while decoding.

use super::config::EngineKind;
use thiserror::Error;

#[derive(Clone, Debug, Error)]
pub enum DecodeError {
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("prompt {index} has {tokens} tokens but the context holds {context}")]
    PromptTooLong {
        index: usize,
        tokens: usize,
        context: usize,
    },
    #[error("draft model {draft} does not share the vocabulary of target model {target} ({why})")]
    VocabMismatch {
        draft: String,
        target: String,
        why: String,
    },
    #[error("engine {0} needs a draft model")]
    NeedsDraft(EngineKind),
}

pub type Result<T> = std::result::Result<T, DecodeError>;
