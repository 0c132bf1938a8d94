//! The llama.cpp backend (GGUF models) through the `llama-cpp-2` crate.
//!
//! All sequences live in one unified KV cache, so `fork` only tags the source's
//! cells with the new sequence id: branches share their prompt without a copy.
//!
//! Dropped tokens (truncated or released) are not freed at once but moved to a
//! reserved "retired" sequence until [`Model::reclaim`]. llama.cpp's attention
//! sums a sequence's cells in cell order, and places new tokens in the first
//! free cells it finds; a token placed in a hole before older tokens of its
//! sequence changes the rounding (measured on SmolLM2: logits off by up to
//! 0.7, enough to flip greedy choices). Keeping holes closed keeps every
//! sequence's cells in position order, as in plain one-sequence decoding.

use super::{BatchToken, Model, ModelError, Result, SeqId, Token};
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaModel};
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::DecodeError;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::OnceLock;

/// llama.cpp allows one backend per process.
fn backend() -> &'static LlamaBackend {
    static BACKEND: OnceLock<LlamaBackend> = OnceLock::new();
    BACKEND.get_or_init(|| {
        let mut backend = LlamaBackend::init().expect("llama.cpp backend initialised twice");
        if std::env::var_os("SEED_LLAMA_LOG").is_none() {
            backend.void_logs();
        }
        backend
    })
}

/// Settings of a loaded model's context.
#[derive(Clone, Debug)]
pub struct LlamaOptions {
    /// KV cells shared by all sequences.
    pub context: usize,
    /// Most sequences alive at once (llama.cpp allows up to 256).
    pub max_sequences: usize,
    /// CPU threads; 0 for all cores.
    pub threads: usize,
}

impl Default for LlamaOptions {
    fn default() -> Self {
        LlamaOptions {
            context: 8192,
            max_sequences: 256,
            threads: 0,
        }
    }
}

pub struct LlamaLm {
    // Declared before `model` so it drops first: it borrows the boxed model.
    ctx: LlamaContext<'static>,
    model: Box<LlamaModel>,
    name: String,
    vocab_size: usize,
    context: usize,
    /// Cached length of each live sequence, indexed by sequence id; the last id
    /// is reserved for retired cells.
    lens: Vec<Option<usize>>,
    /// Whether any cell is retired.
    retired: bool,
    /// Batch index of each requested logits row of the last forward.
    rows: Vec<i32>,
    batch: LlamaBatch<'static>,
    batch_capacity: usize,
}

impl LlamaLm {
    pub fn load(path: &Path, options: &LlamaOptions) -> Result<Self> {
        let load_err = |reason: String| ModelError::Load {
            path: path.display().to_string(),
            reason,
        };
        check_gguf_header(path).map_err(load_err)?;
        let params = LlamaModelParams::default().with_n_gpu_layers(if cfg!(feature = "cuda") {
            1000
        } else {
            0
        });
        let model = LlamaModel::load_from_file(backend(), path, &params).map_err(|e| {
            load_err(format!(
                "llama.cpp could not load it ({e}); is it a complete GGUF model?"
            ))
        })?;
        let model = Box::new(model);
        let threads = if options.threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            options.threads
        } as i32;
        // llama.cpp pads the context to a multiple of 256; do it here so that
        // a batch (at most the context) always fits.
        let context = options.context.max(256).div_ceil(256) * 256;
        // llama.cpp aborts if it may need more output rows (one per sequence)
        // than a batch holds, and a batch holds at most the context.
        let max_sequences = options.max_sequences.min(context / 2).clamp(2, 256);
        let cparams = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(context as u32))
            .with_n_batch(context as u32)
            .with_n_ubatch(512)
            .with_n_seq_max(max_sequences as u32)
            .with_kv_unified(true)
            .with_n_threads(threads)
            .with_n_threads_batch(threads);
        // SAFETY: the context borrows the model, which is boxed (stable address) and
        // outlives it: `ctx` is dropped before `model` (field order) and neither moves out.
        let model_ref: &'static LlamaModel = unsafe { &*(model.as_ref() as *const LlamaModel) };
        let ctx = model_ref
            .new_context(backend(), cparams)
            .map_err(|e| load_err(format!("could not create a context: {e}")))?;
        let vocab_size = model.n_vocab() as usize;
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let context = ctx.n_ctx() as usize;
        Ok(LlamaLm {
            ctx,
            model,
            name,
            vocab_size,
            context,
            lens: vec![None; max_sequences],
            retired: false,
            rows: Vec::new(),
            batch: LlamaBatch::new(1, 1),
            batch_capacity: 0,
        })
    }

    fn len_mut(&mut self, seq: SeqId) -> Result<&mut usize> {
        self.lens
            .get_mut(seq.0 as usize)
            .and_then(Option::as_mut)
            .ok_or(ModelError::UnknownSequence(seq))
    }

    fn free_id(&self) -> Result<SeqId> {
        let usable = self.lens.len() - 1;
        self.lens[..usable]
            .iter()
            .position(Option::is_none)
            .map(|i| SeqId(i as u32))
            .ok_or(ModelError::OutOfSequences(usable))
    }

    fn retired_id(&self) -> i32 {
        self.lens.len() as i32 - 1
    }

    /// Moves the cells of `seq` from position `from` on to the retired sequence.
    fn retire(&mut self, seq: SeqId, from: usize) -> Result<()> {
        let err = |e: llama_cpp_2::context::kv_cache::KvCacheConversionError| {
            ModelError::Forward(e.to_string())
        };
        self.ctx
            .copy_kv_cache_seq(seq.0 as i32, self.retired_id(), Some(from as u32), None)
            .map_err(err)?;
        self.ctx
            .clear_kv_cache_seq(Some(seq.0), Some(from as u32), None)
            .map_err(err)?;
        self.retired = true;
        Ok(())
    }
}

/// A clearer message than llama.cpp's for files that are not GGUF at all.
fn check_gguf_header(path: &Path) -> std::result::Result<(), String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| format!("cannot open it: {e}"))?;
    let mut magic = [0u8; 4];
    file.read_exact(&mut magic)
        .map_err(|_| "it is too short to be a GGUF model".to_string())?;
    if &magic != b"GGUF" {
        return Err("it is not a GGUF model (no GGUF magic bytes)".into());
    }
    Ok(())
}

impl Model for LlamaLm {
    fn name(&self) -> &str {
        &self.name
    }

    fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    fn context_size(&self) -> usize {
        self.context
    }

    fn create(&mut self) -> Result<SeqId> {
        let id = self.free_id()?;
        self.lens[id.0 as usize] = Some(0);
        Ok(id)
    }

    fn fork(&mut self, src: SeqId) -> Result<SeqId> {
        let len = *self.len_mut(src)?;
        let id = self.free_id()?;
        self.ctx
            .copy_kv_cache_seq(src.0 as i32, id.0 as i32, None, None)
            .map_err(|e| ModelError::Forward(e.to_string()))?;
        self.lens[id.0 as usize] = Some(len);
        Ok(id)
    }

    fn truncate(&mut self, seq: SeqId, len: usize) -> Result<()> {
        let cur = self.len_mut(seq)?;
        if len < *cur {
            *cur = len;
            self.retire(seq, len)?;
        }
        Ok(())
    }

    fn release(&mut self, seq: SeqId) {
        if seq.0 as i32 != self.retired_id() && self.seq_len(seq).is_ok() {
            self.lens[seq.0 as usize] = None;
            if self.retire(seq, 0).is_err() {
                let _ = self.ctx.clear_kv_cache_seq(Some(seq.0), None, None);
            }
        }
    }

    fn reclaim(&mut self) {
        if self.retired {
            let _ = self
                .ctx
                .clear_kv_cache_seq(Some(self.retired_id() as u32), None, None);
            self.retired = false;
        }
    }

    fn seq_len(&self, seq: SeqId) -> Result<usize> {
        self.lens
            .get(seq.0 as usize)
            .copied()
            .flatten()
            .ok_or(ModelError::UnknownSequence(seq))
    }

    fn forward(&mut self, batch: &[BatchToken]) -> Result<()> {
        self.rows.clear();
        if batch.is_empty() {
            return Ok(());
        }
        // Check positions first so that a bookkeeping error never reaches llama.cpp.
        let mut next = self.lens.clone();
        for t in batch {
            if t.token as usize >= self.vocab_size {
                return Err(ModelError::BadToken {
                    token: t.token,
                    vocab: self.vocab_size,
                });
            }
            for &s in &t.seqs {
                let len = next
                    .get_mut(s.0 as usize)
                    .and_then(Option::as_mut)
                    .ok_or(ModelError::UnknownSequence(s))?;
                if *len != t.pos {
                    return Err(ModelError::BadPosition {
                        seq: s,
                        pos: t.pos,
                        len: *len,
                    });
                }
                *len += 1;
            }
        }
        if batch.len() > self.context {
            return Err(ModelError::CacheFull(self.context));
        }
        if batch.len() > self.batch_capacity {
            self.batch_capacity = batch.len().next_power_of_two();
            self.batch = LlamaBatch::new(self.batch_capacity, self.lens.len() as i32);
        }
        self.batch.clear();
        let mut ids = Vec::new();
        for (i, t) in batch.iter().enumerate() {
            ids.clear();
            ids.extend(t.seqs.iter().map(|s| s.0 as i32));
            self.batch
                .add(LlamaToken(t.token as i32), t.pos as i32, &ids, t.logits)
                .map_err(|e| ModelError::Forward(e.to_string()))?;
            if t.logits {
                self.rows.push(i as i32);
            }
        }
        let mut status = self.ctx.decode(&mut self.batch);
        if status == Err(DecodeError::NoKvCacheSlot) && self.retired {
            // Out of room: give up cell order for room (see the module comment).
            self.reclaim();
            status = self.ctx.decode(&mut self.batch);
        }
        match status {
            Ok(()) => {}
            Err(DecodeError::NoKvCacheSlot) => {
                self.rows.clear();
                return Err(ModelError::CacheFull(self.context));
            }
            Err(e) => {
                self.rows.clear();
                return Err(ModelError::Forward(e.to_string()));
            }
        }
        self.lens = next;
        Ok(())
    }

    fn logits(&self, row: usize) -> &[f32] {
        self.ctx.get_logits_ith(self.rows[row])
    }

    fn tokenize(&self, text: &str, add_bos: bool) -> Result<Vec<Token>> {
        let vocab = self.model.vocab();
        let add_bos = add_bos && vocab.should_add_bos();
        Ok(vocab
            .tokenize(text.as_bytes(), add_bos, true)
            .into_iter()
            .map(|t| t.0 as Token)
            .collect())
    }

    fn token_bytes(&self, token: Token) -> Vec<u8> {
        self.model
            .vocab()
            .token_to_piece(LlamaToken(token as i32), false, None)
    }

    fn is_end(&self, token: Token) -> bool {
        self.model.vocab().is_eog(LlamaToken(token as i32))
    }

    fn chat_prompt(&self, user: &str) -> Result<String> {
        let err = |e: &dyn std::fmt::Display| ModelError::Tokenizer(format!("chat template: {e}"));
        let template = self.model.chat_template(None).map_err(|e| err(&e))?;
        let message = LlamaChatMessage::new("user".into(), user.into()).map_err(|e| err(&e))?;
        self.model
            .apply_chat_template(&template, &[message], true)
            .map_err(|e| err(&e))
    }
}
