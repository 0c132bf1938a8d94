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
//!
//! Exact mode ([`LlamaOptions::exact`]) makes every logits row independent of
//! what else is in its forward. ggml's CPU backend picks kernels by batch
//! shape, and they round differently (measured on the Qwen2.5 Q4_K_M pair:
//! logits off by up to 0.7 between a row computed alone and inside a batch):
//! - K-quant matrix products take a tiled kernel from 8 rows on: turned off
//!   (`GGML_CPU_TILED_MM=0`, read once per process);
//! - weights repacked at load time (K-quants, Q4_0, ...) are multiplied by a
//!   gemm kernel in groups of 4 rows and by a gemv kernel for the rest, and
//!   llama.cpp computes the last layer on the logits rows only: every forward
//!   is padded to a multiple of 4 tokens (on a reserved padding sequence) and
//!   of 4 logits rows (not repacking costs twice as much, measured);
//! - flash attention takes a tiled kernel from 64 query rows on and splits the
//!   cache across threads for a single row: forwards are cut into chunks of
//!   at most 60 tokens, and the padding leaves no lone row.
//!
//! What remains (per-row vector dot products, the 4-row gemm per row, flash
//! attention summing a sequence's cells in order) does not depend on the batch.

use super::llama_chat::chat;
use super::{BatchToken, Model, ModelError, Result, SeqId, Text, Token};
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::DecodeError;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::{Arc, OnceLock};

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
    /// Batch-invariant kernels (see the module comment).
    pub exact: bool,
}

/// Largest exact-mode forward, padding included: flash attention switches to
/// its tiled kernel at 64 query rows (`GGML_FA_TILE_Q`).
const EXACT_MAX_TOKENS: usize = 60;

/// Exact-mode forwards hold a multiple of this many tokens and of logits rows:
/// repacked weights are multiplied by a gemm kernel in groups of 4 rows and by
/// a gemv kernel for the rest, which rounds differently.
const EXACT_ROW_GROUP: usize = 4;

impl Default for LlamaOptions {
    fn default() -> Self {
        LlamaOptions {
            context: 8192,
            max_sequences: 256,
            threads: 0,
            exact: false,
        }
    }
}

pub struct LlamaLm {
    // Declared before `model` so it drops first: it borrows the boxed model.
    ctx: LlamaContext<'static>,
    model: Arc<LlamaModel>,
    name: String,
    vocab_size: usize,
    context: usize,
    /// Cached length of each live sequence, indexed by sequence id; the last id
    /// is reserved for retired cells, the one before it for padding tokens.
    lens: Vec<Option<usize>>,
    exact: bool,
    /// Exact mode: the requested logits rows of the last forward, copied out
    /// of the chunks it was cut into.
    exact_logits: Vec<f32>,
    /// Whether any cell is retired.
    retired: bool,
    /// Cells filled since the KV cache was last empty (see `cells_placed`).
    placed: usize,
    /// Whether cell order was given up for room (told once, in exact mode).
    order_given_up: bool,
    /// Batch index of each requested logits row of the last forward.
    rows: Vec<i32>,
    batch: LlamaBatch<'static>,
    batch_capacity: usize,
}

impl LlamaLm {
    /// Out of room: frees the retired cells, giving up cell order (see the
    /// module comment); exact mode says once that its guarantee ends here.
    fn give_up_cell_order(&mut self) {
        if self.exact && !self.order_given_up {
            eprintln!(
                "warning: the KV cache ({} cells) is full: freed cells are reused out of \
                 order, so from here exact mode may not give ar's tokens; raise --ctx",
                self.context
            );
            self.order_given_up = true;
        }
        self.reclaim();
    }

    pub fn load(path: &Path, options: &LlamaOptions) -> Result<Self> {
        let load_err = |reason: String| ModelError::Load {
            path: path.display().to_string(),
            reason,
        };
        check_gguf_header(path).map_err(load_err)?;
        let gpu_layers = if cfg!(feature = "cuda") { 1000 } else { 0 };
        if options.exact {
            disable_tiled_matmul();
        }
        let params = LlamaModelParams::default().with_n_gpu_layers(gpu_layers);
        let model = LlamaModel::load_from_file(backend(), path, &params).map_err(|e| {
            load_err(format!(
                "llama.cpp could not load it ({e}); is it a complete GGUF model?"
            ))
        })?;
        let model = Arc::new(model);
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
        let max_sequences = options.max_sequences.min(context / 2).clamp(3, 256);
        let cparams = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(context as u32))
            .with_n_batch(context as u32)
            .with_n_ubatch(512)
            .with_n_seq_max(max_sequences as u32)
            .with_kv_unified(true)
            .with_n_threads(threads)
            .with_n_threads_batch(threads)
            .with_flash_attention_policy(if options.exact {
                llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_ENABLED
            } else {
                llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_AUTO
            });
        // SAFETY: the context borrows the model, which is shared (stable address) and
        // outlives it: `ctx` is dropped before `model` (field order), and other
        // holders (tokenizers) only keep it alive longer.
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
            exact: options.exact,
            exact_logits: Vec::new(),
            retired: false,
            placed: 0,
            order_given_up: false,
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
        let usable = self.lens.len() - 2;
        self.lens[..usable]
            .iter()
            .position(Option::is_none)
            .map(|i| SeqId(i as u32))
            .ok_or(ModelError::OutOfSequences(usable))
    }

    fn retired_id(&self) -> i32 {
        self.lens.len() as i32 - 1
    }

    fn padding_id(&self) -> i32 {
        self.lens.len() as i32 - 2
    }

    /// Runs one llama.cpp decode over `batch`, after the caller's checks, and
    /// records which batch rows hold the requested logits. In exact mode the
    /// tokens and the logits rows are padded to multiples of
    /// [`EXACT_ROW_GROUP`]: padding tokens on the padding sequence (removed
    /// after the decode), then unrequested logits rows.
    fn decode(&mut self, batch: &[BatchToken]) -> Result<()> {
        self.rows.clear();
        let group = if self.exact { EXACT_ROW_GROUP } else { 1 };
        let pad = batch.len().next_multiple_of(group) - batch.len();
        let wanted = batch.iter().filter(|t| t.logits).count();
        let extra_rows = wanted.next_multiple_of(group) - wanted;
        // Padding tokens give the extra rows first, then the batch's last tokens.
        let padding_rows = extra_rows.min(pad);
        let mut extra = vec![false; batch.len()];
        for (i, _) in batch
            .iter()
            .enumerate()
            .rev()
            .filter(|(_, t)| !t.logits)
            .take(extra_rows - padding_rows)
        {
            extra[i] = true;
        }
        let capacity = batch.len() + pad;
        if capacity > self.batch_capacity {
            self.batch_capacity = capacity.next_power_of_two();
            self.batch = LlamaBatch::new(self.batch_capacity, self.lens.len() as i32);
        }
        self.batch.clear();
        let mut ids = Vec::new();
        for (i, t) in batch.iter().enumerate() {
            ids.clear();
            ids.extend(t.seqs.iter().map(|s| s.0 as i32));
            self.batch
                .add(
                    LlamaToken(t.token as i32),
                    t.pos as i32,
                    &ids,
                    t.logits || extra[i],
                )
                .map_err(|e| ModelError::Forward(e.to_string()))?;
            if t.logits {
                self.rows.push(i as i32);
            }
        }
        for pos in 0..pad {
            self.batch
                .add(
                    LlamaToken(batch[0].token as i32),
                    pos as i32,
                    &[self.padding_id()],
                    pos < padding_rows,
                )
                .map_err(|e| ModelError::Forward(e.to_string()))?;
        }
        let mut status = self.ctx.decode(&mut self.batch);
        if status == Err(DecodeError::NoKvCacheSlot) && self.retired {
            self.give_up_cell_order();
            status = self.ctx.decode(&mut self.batch);
        }
        if pad > 0 {
            let _ = self
                .ctx
                .clear_kv_cache_seq(Some(self.padding_id() as u32), None, None);
        }
        match status {
            Ok(()) => {
                self.placed += batch.len();
                Ok(())
            }
            Err(DecodeError::NoKvCacheSlot) => {
                self.rows.clear();
                Err(ModelError::CacheFull(self.context))
            }
            Err(e) => {
                self.rows.clear();
                Err(ModelError::Forward(e.to_string()))
            }
        }
    }

    /// After a failed decode, which may have written part of `batch`: drops
    /// every cell past what each of its sequences holds, so that a failed
    /// forward leaves the KV cache as it was.
    fn forget_uncommitted(&mut self, batch: &[BatchToken]) {
        let mut seqs: Vec<SeqId> = batch.iter().flat_map(|t| t.seqs.iter().copied()).collect();
        seqs.sort_unstable();
        seqs.dedup();
        for s in seqs {
            if let Some(&Some(len)) = self.lens.get(s.0 as usize) {
                let _ = self
                    .ctx
                    .clear_kv_cache_seq(Some(s.0), Some(len as u32), None);
            }
        }
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

/// Turns off ggml's tiled K-quant matrix product for this process, as exact
/// mode needs. ggml reads the switch once, at the process's first matrix
/// product: a fast-mode model that computed before an exact one was loaded
/// leaves it on, so a process mixing modes calls this before either computes.
pub fn disable_tiled_matmul() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // SAFETY: called before any llama.cpp compute thread reads the environment
    // (it runs at model load, before the first forward of this process's models).
    ONCE.call_once(|| std::env::set_var("GGML_CPU_TILED_MM", "0"));
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
        if self.live_sequences() == Some(0) {
            self.placed = 0;
        }
    }

    fn max_sequences(&self) -> Option<usize> {
        // The last two ids are reserved (retired cells, padding).
        Some(self.lens.len() - 2)
    }

    fn cells_placed(&self) -> Option<usize> {
        Some(self.placed)
    }

    fn batch_invariant(&self) -> bool {
        self.exact
    }

    fn scratch_cells(&self) -> usize {
        if self.exact {
            EXACT_ROW_GROUP - 1
        } else {
            0
        }
    }

    fn computed_rows(&self, tokens: usize) -> usize {
        // Exact mode pads every chunk (a multiple of the group but the last).
        match self.exact {
            true => tokens.next_multiple_of(EXACT_ROW_GROUP),
            false => tokens,
        }
    }

    fn live_sequences(&self) -> Option<usize> {
        // The last two ids are reserved (retired cells, padding).
        Some(self.lens[..self.lens.len() - 2].iter().flatten().count())
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
        if self.exact {
            self.exact_logits.clear();
            for chunk in batch.chunks(EXACT_MAX_TOKENS) {
                self.decode(chunk)
                    .inspect_err(|_| self.forget_uncommitted(chunk))?;
                for row in 0..self.rows.len() {
                    let logits = self.ctx.get_logits_ith(self.rows[row]);
                    self.exact_logits.extend_from_slice(logits);
                }
                // Committed chunk by chunk so that a failure leaves them true.
                for t in chunk {
                    for s in &t.seqs {
                        self.lens[s.0 as usize] = Some(t.pos + 1);
                    }
                }
            }
        } else {
            self.decode(batch)
                .inspect_err(|_| self.forget_uncommitted(batch))?;
            self.lens = next;
        }
        Ok(())
    }

    fn logits(&self, row: usize) -> &[f32] {
        if self.exact {
            &self.exact_logits[row * self.vocab_size..(row + 1) * self.vocab_size]
        } else {
            self.ctx.get_logits_ith(self.rows[row])
        }
    }

    fn tokenize(&self, text: &str, add_bos: bool) -> Result<Vec<Token>> {
        tokenize(&self.model, text, add_bos)
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
        self.chat(&[super::ChatMessage {
            role: "user".into(),
            content: user.into(),
        }])
    }

    fn chat(&self, messages: &[super::ChatMessage]) -> Result<String> {
        chat(&self.model, messages)
    }

    fn text(&self) -> Option<Arc<dyn Text>> {
        Some(Arc::new(LlamaText(self.model.clone())))
    }
}

/// A llama.cpp model's tokenizer and chat template, for any thread (llama.cpp
/// tokenizes from a model's read-only vocabulary, as llama-server's HTTP
/// threads do while its engine decodes).
struct LlamaText(Arc<LlamaModel>);

impl Text for LlamaText {
    fn tokenize(&self, text: &str, add_bos: bool) -> Result<Vec<Token>> {
        tokenize(&self.0, text, add_bos)
    }

    fn chat(&self, messages: &[super::ChatMessage]) -> Result<String> {
        chat(&self.0, messages)
    }
}

fn tokenize(model: &LlamaModel, text: &str, add_bos: bool) -> Result<Vec<Token>> {
    let vocab = model.vocab();
    let add_bos = add_bos && vocab.should_add_bos();
    Ok(vocab
        .tokenize(text.as_bytes(), add_bos, true)
        .into_iter()
        .map(|t| t.0 as Token)
        .collect())
}
