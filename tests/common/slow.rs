//! The tiny model slowed down, so that requests are surely still running
//! when a test acts on them; optionally never ending by itself.

use seed::model::tiny::TinyLm;
use seed::model::{BatchToken, Model, SeqId, Token};
use std::time::Duration;

pub struct Slow {
    pub inner: TinyLm,
    /// Slept before every forward.
    pub delay: Duration,
    /// Never ends by itself (no token is an end token).
    pub endless: bool,
}

impl Model for Slow {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn vocab_size(&self) -> usize {
        self.inner.vocab_size()
    }
    fn context_size(&self) -> usize {
        self.inner.context_size()
    }
    fn create(&mut self) -> seed::model::Result<SeqId> {
        self.inner.create()
    }
    fn fork(&mut self, src: SeqId) -> seed::model::Result<SeqId> {
        self.inner.fork(src)
    }
    fn truncate(&mut self, seq: SeqId, len: usize) -> seed::model::Result<()> {
        self.inner.truncate(seq, len)
    }
    fn release(&mut self, seq: SeqId) {
        self.inner.release(seq)
    }
    fn seq_len(&self, seq: SeqId) -> seed::model::Result<usize> {
        self.inner.seq_len(seq)
    }
    fn live_sequences(&self) -> Option<usize> {
        self.inner.live_sequences()
    }
    fn forward(&mut self, batch: &[BatchToken]) -> seed::model::Result<()> {
        std::thread::sleep(self.delay);
        self.inner.forward(batch)
    }
    fn logits(&self, row: usize) -> &[f32] {
        self.inner.logits(row)
    }
    fn tokenize(&self, text: &str, add_bos: bool) -> seed::model::Result<Vec<Token>> {
        self.inner.tokenize(text, add_bos)
    }
    fn token_bytes(&self, token: Token) -> Vec<u8> {
        self.inner.token_bytes(token)
    }
    fn is_end(&self, token: Token) -> bool {
        !self.endless && self.inner.is_end(token)
    }
    fn chat_prompt(&self, user: &str) -> seed::model::Result<String> {
        self.inner.chat_prompt(user)
    }
}
