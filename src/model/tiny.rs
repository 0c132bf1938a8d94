//! A tiny deterministic pure-Rust language model for exact, fast unit tests.
//!
//! Its logits are a hash of the whole context, so any mistake in KV bookkeeping
//! (a token missing, extra or at the wrong position) changes the output. A draft
//! is the same model with `noise` added, so that some of its drafts get rejected.

use super::{transcript, BatchToken, ChatMessage, Model, ModelError, Result, SeqId, Text, Token};
use std::collections::HashMap;
use std::sync::Arc;

/// Token 0 ends generation; tokens 1.. stand for the characters of `ALPHABET`.
const ALPHABET: &[u8] = b" abcdefghijklmnopqrstuvwxyz.,?!:0123456789\n";

#[derive(Clone, Debug)]
pub struct TinyConfig {
    pub vocab: usize,
    /// Scale of the logits: larger makes the distribution peakier.
    pub sharpness: f32,
    /// Weight of a second, unrelated logit pattern (0 for a target).
    pub noise: f32,
    pub seed: u64,
    pub context: usize,
}

impl TinyConfig {
    pub fn target() -> Self {
        TinyConfig {
            vocab: 24,
            sharpness: 3.0,
            noise: 0.0,
            seed: 7,
            context: 1 << 22,
        }
    }

    /// A draft that agrees with [`TinyConfig::target`] most of the time.
    pub fn draft() -> Self {
        TinyConfig {
            noise: 1.5,
            ..Self::target()
        }
    }
}

pub struct TinyLm {
    config: TinyConfig,
    name: String,
    /// Per sequence, the context hash after each cached token.
    seqs: HashMap<SeqId, Vec<u64>>,
    next_id: u32,
    out: Vec<Vec<f32>>,
    pub forwards: usize,
}

fn mix(mut x: u64) -> u64 {
    // splitmix64 finaliser
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d049bb133111eb);
    x ^ (x >> 31)
}

fn unit(x: u64) -> f32 {
    (x >> 40) as f32 / (1u64 << 24) as f32
}

impl TinyLm {
    pub fn new(config: TinyConfig) -> Self {
        assert!(config.vocab >= 2 && config.vocab <= ALPHABET.len() + 1);
        TinyLm {
            name: format!("tiny(seed {}, noise {})", config.seed, config.noise),
            config,
            seqs: HashMap::new(),
            next_id: 0,
            out: Vec::new(),
            forwards: 0,
        }
    }

    /// Logits after a context whose hash is `h`. The end token is rare so that
    /// generations run long enough to test.
    pub fn logits_for(&self, h: u64) -> Vec<f32> {
        let c = &self.config;
        (0..c.vocab as u64)
            .map(|v| {
                let base = unit(mix(h ^ mix(v + 1)));
                let noise = unit(mix(h ^ mix(v + 1000) ^ 0x5eed));
                let end_penalty = if v == 0 { 2.0 } else { 0.0 };
                c.sharpness * (base * base * 2.0 + c.noise * noise) - end_penalty
            })
            .collect()
    }

    fn tiny_text(&self) -> TinyText {
        TinyText {
            vocab: self.config.vocab,
        }
    }

    /// Forks share their common prefix's cells, as in a real KV cache: a
    /// cell is a distinct (position, context hash). Counted only when the
    /// sequences' lengths alone pass the context.
    fn cells_used(&self) -> usize {
        let total: usize = self.seqs.values().map(Vec::len).sum();
        if total <= self.config.context / 2 {
            return total;
        }
        self.seqs
            .values()
            .flat_map(|hashes| hashes.iter().enumerate())
            .collect::<std::collections::HashSet<_>>()
            .len()
    }

    fn start_hash(&self) -> u64 {
        mix(self.config.seed)
    }

    /// The forward itself; may fail part way through the batch.
    fn forward_all(&mut self, batch: &[BatchToken]) -> Result<()> {
        self.out.clear();
        self.forwards += 1;
        if self.cells_used() + batch.len() > self.config.context {
            return Err(ModelError::CacheFull(self.config.context));
        }
        for t in batch {
            if t.token as usize >= self.config.vocab {
                return Err(ModelError::BadToken {
                    token: t.token,
                    vocab: self.config.vocab,
                });
            }
            let first = *t
                .seqs
                .first()
                .ok_or(ModelError::Forward("token without sequence".into()))?;
            let cache = self
                .seqs
                .get(&first)
                .ok_or(ModelError::UnknownSequence(first))?;
            let prev = cache.last().copied().unwrap_or_else(|| self.start_hash());
            let h = mix(prev ^ mix(t.token as u64 + 1) ^ (t.pos as u64).wrapping_mul(0x9e37));
            for &s in &t.seqs {
                let cache = self
                    .seqs
                    .get_mut(&s)
                    .ok_or(ModelError::UnknownSequence(s))?;
                if cache.len() != t.pos {
                    return Err(ModelError::BadPosition {
                        seq: s,
                        pos: t.pos,
                        len: cache.len(),
                    });
                }
                cache.push(h);
            }
            if t.logits {
                let row = self.logits_for(h);
                self.out.push(row);
            }
        }
        Ok(())
    }
}

impl Model for TinyLm {
    fn name(&self) -> &str {
        &self.name
    }

    fn vocab_size(&self) -> usize {
        self.config.vocab
    }

    fn context_size(&self) -> usize {
        self.config.context
    }

    fn create(&mut self) -> Result<SeqId> {
        let id = SeqId(self.next_id);
        self.next_id += 1;
        self.seqs.insert(id, Vec::new());
        Ok(id)
    }

    fn fork(&mut self, src: SeqId) -> Result<SeqId> {
        let cache = self
            .seqs
            .get(&src)
            .ok_or(ModelError::UnknownSequence(src))?
            .clone();
        let id = self.create()?;
        self.seqs.insert(id, cache);
        Ok(id)
    }

    fn truncate(&mut self, seq: SeqId, len: usize) -> Result<()> {
        self.seqs
            .get_mut(&seq)
            .ok_or(ModelError::UnknownSequence(seq))?
            .truncate(len);
        Ok(())
    }

    fn release(&mut self, seq: SeqId) {
        self.seqs.remove(&seq);
    }

    fn batch_invariant(&self) -> bool {
        true
    }

    fn live_sequences(&self) -> Option<usize> {
        Some(self.seqs.len())
    }

    fn seq_len(&self, seq: SeqId) -> Result<usize> {
        self.seqs
            .get(&seq)
            .map(Vec::len)
            .ok_or(ModelError::UnknownSequence(seq))
    }

    fn forward(&mut self, batch: &[BatchToken]) -> Result<()> {
        // A failed forward leaves every sequence as it was.
        let before: Vec<(SeqId, usize)> = batch
            .iter()
            .flat_map(|t| &t.seqs)
            .filter_map(|&s| Some((s, self.seqs.get(&s)?.len())))
            .collect();
        let result = self.forward_all(batch);
        if result.is_err() {
            self.out.clear();
            for (s, len) in before {
                if let Some(cache) = self.seqs.get_mut(&s) {
                    cache.truncate(len);
                }
            }
        }
        result
    }

    fn logits(&self, row: usize) -> &[f32] {
        &self.out[row]
    }

    fn tokenize(&self, text: &str, add_bos: bool) -> Result<Vec<Token>> {
        self.tiny_text().tokenize(text, add_bos)
    }

    fn token_bytes(&self, token: Token) -> Vec<u8> {
        match token {
            0 => Vec::new(),
            t => vec![ALPHABET[t as usize - 1]],
        }
    }

    fn is_end(&self, token: Token) -> bool {
        token == 0
    }

    fn chat_prompt(&self, user: &str) -> Result<String> {
        Ok(chat_prompt(user))
    }

    fn text(&self) -> Option<Arc<dyn Text>> {
        Some(Arc::new(self.tiny_text()))
    }
}

fn chat_prompt(user: &str) -> String {
    format!("q: {user}\na:")
}

/// The tiny model's tokenizer: a token per character of [`ALPHABET`].
struct TinyText {
    vocab: usize,
}

impl Text for TinyText {
    fn tokenize(&self, text: &str, _add_bos: bool) -> Result<Vec<Token>> {
        text.bytes()
            .map(|b| {
                ALPHABET
                    .iter()
                    .position(|&a| a == b.to_ascii_lowercase())
                    .map(|i| (i % (self.vocab - 1)) as Token + 1)
                    .ok_or_else(|| {
                        ModelError::Tokenizer(format!(
                            "tiny model has no token for {:?}",
                            b as char
                        ))
                    })
            })
            .collect()
    }

    fn chat(&self, messages: &[ChatMessage]) -> Result<String> {
        transcript(messages, |user| Ok(chat_prompt(user)))
    }
}
