//! The model layer: a causal LM whose sequences share one KV cache.
//!
//! Everything above this layer talks to a model only through [`Model`], so the
//! engines run unchanged on llama.cpp and on the pure-Rust [`tiny`] model.

mod chat_template;
pub mod llama;
mod llama_chat;
pub mod tiny;

use std::sync::Arc;
use thiserror::Error;

/// A token id in the model's vocabulary.
pub type Token = u32;

/// A sequence in the model's KV cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeqId(pub u32);

/// One message of a conversation (`system`, `user`, `assistant`, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

/// One token of a ragged batch.
#[derive(Clone, Debug)]
pub struct BatchToken {
    pub token: Token,
    /// Position within its sequences; must equal each sequence's current length.
    pub pos: usize,
    /// The sequences this token belongs to (several for a token shared by the
    /// paths of a draft tree). Attention follows the first one.
    pub seqs: Vec<SeqId>,
    /// Whether the forward should return logits for this token.
    pub logits: bool,
}

#[derive(Clone, Debug, Error)]
pub enum ModelError {
    #[error("model file {path}: {reason}")]
    Load { path: String, reason: String },
    #[error("all {0} sequences of the KV cache are in use")]
    OutOfSequences(usize),
    #[error("the KV cache is full ({0} cells); use a larger context or fewer branches")]
    CacheFull(usize),
    #[error("unknown sequence {0:?}")]
    UnknownSequence(SeqId),
    #[error("token at position {pos} does not follow sequence {seq:?} of length {len}")]
    BadPosition { seq: SeqId, pos: usize, len: usize },
    #[error("token {token} is outside the vocabulary of {vocab} tokens")]
    BadToken { token: Token, vocab: usize },
    #[error("forward failed: {0}")]
    Forward(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
}

pub type Result<T> = std::result::Result<T, ModelError>;

/// A causal language model with a shared KV cache of sequences.
pub trait Model {
    /// A name for messages (usually the file name).
    fn name(&self) -> &str;
    fn vocab_size(&self) -> usize;
    /// Total KV cells shared by all sequences.
    fn context_size(&self) -> usize;

    /// A new empty sequence.
    fn create(&mut self) -> Result<SeqId>;
    /// A new sequence sharing all of `src`'s cached tokens (no copy of the cache).
    fn fork(&mut self, src: SeqId) -> Result<SeqId>;
    /// Drops the cached tokens of `seq` from position `len` on.
    fn truncate(&mut self, seq: SeqId, len: usize) -> Result<()>;
    /// Drops `seq`.
    fn release(&mut self, seq: SeqId);
    /// Frees the cells of dropped tokens. A backend may keep them occupied
    /// until then, so that new tokens never fill holes among older ones.
    fn reclaim(&mut self) {}
    /// Most sequences alive at once, where the backend has a limit.
    fn max_sequences(&self) -> Option<usize> {
        None
    }
    /// Cells filled since the KV cache was last empty, the cells of dropped
    /// tokens not yet reclaimed included: while nothing is reclaimed, where
    /// the next token goes (each lands above all older ones). `None` if the
    /// backend does not count them.
    fn cells_placed(&self) -> Option<usize> {
        None
    }
    /// Whether every logits row is computed the same whatever else is in its
    /// forward (so cell layout must be preserved too; see `llama` exact mode).
    fn batch_invariant(&self) -> bool {
        false
    }
    /// KV cells a forward may hold for a moment beyond its tokens (exact
    /// mode's padding), which admission keeps free.
    fn scratch_cells(&self) -> usize {
        0
    }
    /// Rows a forward of `tokens` tokens computes (more where the backend
    /// pads forwards), for cost estimates.
    fn computed_rows(&self, tokens: usize) -> usize {
        tokens
    }
    /// Number of cached tokens of `seq`.
    fn seq_len(&self, seq: SeqId) -> Result<usize>;
    /// Sequences alive (for reports: a server shows that cancelled work freed
    /// its sequences); `None` if the backend does not count them.
    fn live_sequences(&self) -> Option<usize> {
        None
    }

    /// Runs one forward over a ragged batch. Afterwards `logits(i)` is the row of
    /// the i-th token that asked for logits, in batch order.
    fn forward(&mut self, batch: &[BatchToken]) -> Result<()>;
    /// Raw (unnormalised) logits of the i-th requested row of the last forward.
    fn logits(&self, row: usize) -> &[f32];

    fn tokenize(&self, text: &str, add_bos: bool) -> Result<Vec<Token>>;
    /// The bytes a token stands for (may be part of a UTF-8 character).
    fn token_bytes(&self, token: Token) -> Vec<u8>;
    /// End-of-generation tokens (EOS, end of turn).
    fn is_end(&self, token: Token) -> bool;
    /// Renders one user message with the model's chat template, ready for the
    /// assistant's reply.
    fn chat_prompt(&self, user: &str) -> Result<String>;
    /// Renders a conversation ready for the assistant's reply. Without a
    /// template of its own, one user message goes through [`Model::chat_prompt`]
    /// and longer conversations become a plain transcript.
    fn chat(&self, messages: &[ChatMessage]) -> Result<String> {
        transcript(messages, |user| self.chat_prompt(user))
    }
    /// Its tokenizer and chat template as a value any thread may use (so that
    /// a server tokenizes off the engine's thread), where it has one.
    fn text(&self) -> Option<Arc<dyn Text>> {
        None
    }
    /// Every token's bytes, to check that two models share a vocabulary.
    fn vocab_fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        for t in 0..self.vocab_size() as Token {
            self.token_bytes(t).hash(&mut h);
        }
        h.finish()
    }
}

/// A model's text side (tokenizer and chat template), shareable between
/// threads.
pub trait Text: Send + Sync {
    fn tokenize(&self, text: &str, add_bos: bool) -> Result<Vec<Token>>;
    /// As [`Model::chat`].
    fn chat(&self, messages: &[ChatMessage]) -> Result<String>;
}

/// A conversation for a model without a chat template of its own: one user
/// message through `chat_prompt`, longer ones as a plain transcript.
pub fn transcript(
    messages: &[ChatMessage],
    chat_prompt: impl Fn(&str) -> Result<String>,
) -> Result<String> {
    if let [m] = messages {
        if m.role == "user" {
            return chat_prompt(&m.content);
        }
    }
    let mut text = String::new();
    for m in messages {
        text += &format!("{}: {}\n", m.role, m.content);
    }
    Ok(text + "assistant:")
}
