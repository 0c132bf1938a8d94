//! The engine: validates a request, prepares its branches and runs the
//! configured decoding method over them.

use super::branch::{Branch, Limits};
use super::prefix::PrefixCache;
use super::sampling::choose;
use super::scheduler::Speculator;
use super::{DecodeError, EngineConfig, EngineKind, Output, Request, Result, RunStats};
use crate::model::{BatchToken, Model, SeqId, Token};
use std::time::Instant;

/// Most tokens of one prompt-processing forward.
const PREFILL_CHUNK: usize = 1024;

pub struct Engine {
    pub target: Box<dyn Model>,
    pub draft: Option<Box<dyn Model>>,
    pub config: EngineConfig,
    /// Prompt prefixes kept across requests, per model (when enabled).
    target_cache: PrefixCache,
    draft_cache: PrefixCache,
}

/// Share of the KV cache the prefix cache may keep between requests.
const PREFIX_CACHE_SHARE: f64 = 0.5;
/// Most cached prefix nodes (each holds a sequence of the model).
const PREFIX_CACHE_NODES: usize = 64;

fn new_cache(model: &dyn Model) -> PrefixCache {
    let budget = (model.context_size() as f64 * PREFIX_CACHE_SHARE) as usize;
    PrefixCache::new(budget, PREFIX_CACHE_NODES)
}

impl Engine {
    /// Checks that the draft (if any) shares the target's vocabulary.
    pub fn new(
        target: Box<dyn Model>,
        draft: Option<Box<dyn Model>>,
        config: EngineConfig,
    ) -> Result<Self> {
        if let Some(d) = &draft {
            let why = if d.vocab_size() != target.vocab_size() {
                Some(format!(
                    "{} tokens against {}",
                    d.vocab_size(),
                    target.vocab_size()
                ))
            } else if d.vocab_fingerprint() != target.vocab_fingerprint() {
                Some("same size, different tokens".to_string())
            } else {
                None
            };
            if let Some(why) = why {
                return Err(DecodeError::VocabMismatch {
                    draft: d.name().to_string(),
                    target: target.name().to_string(),
                    why,
                });
            }
        }
        if config.kind != EngineKind::Ar && draft.is_none() {
            return Err(DecodeError::NeedsDraft(config.kind));
        }
        if config.shape().depth() == 0 {
            return Err(DecodeError::Invalid(
                "the draft length must be at least 1".into(),
            ));
        }
        let target_cache = new_cache(target.as_ref());
        let draft_cache = new_cache(draft.as_deref().unwrap_or(target.as_ref()));
        Ok(Engine {
            target,
            draft,
            config,
            target_cache,
            draft_cache,
        })
    }

    /// Forgets every cached prompt prefix (so that a measurement starts cold).
    pub fn clear_prefix_caches(&mut self) {
        self.target_cache.clear(self.target.as_mut());
        if let Some(d) = self.draft.as_mut() {
            self.draft_cache.clear(d.as_mut());
            d.reclaim();
        }
        self.target.reclaim();
    }

    /// Renders a user message with the target's chat template.
    pub fn chat_prompt(&self, user: &str) -> Result<String> {
        Ok(self.target.chat_prompt(user)?)
    }

    pub fn generate(&mut self, request: &Request) -> Result<Output> {
        request.validate()?;
        let start = Instant::now();
        let prompts = self.tokenize(request)?;
        let limits = Limits {
            max_tokens: request.max_tokens,
            stop: &request.stop,
            context: self.target.context_size(),
        };
        let mut stats = RunStats {
            engine: self.config.label(),
            prompt_tokens: prompts.iter().map(Vec::len).sum(),
            ..RunStats::default()
        };
        let cache = self.config.prefix_cache.then_some(&mut self.target_cache);
        let (roots, reused) = process_prompts(self.target.as_mut(), cache, &prompts)?;
        stats.prompt_reused = reused;
        let mut branches = branches_from(self.target.as_mut(), roots, &prompts, request)?;
        let result = self.run(&mut branches, &prompts, request, &limits, &mut stats, start);
        // Free the cache whether or not the run succeeded.
        for b in &branches {
            self.target.release(b.target_seq);
            if let (Some(d), Some(s)) = (self.draft.as_mut(), b.draft_seq) {
                d.release(s);
            }
        }
        self.target.reclaim();
        if let Some(d) = self.draft.as_mut() {
            d.reclaim();
        }
        let trace = result?;
        stats.wall_s = start.elapsed().as_secs_f64();
        for b in &mut branches {
            let end = if b.finished_at > 0.0 {
                b.finished_at
            } else {
                stats.wall_s
            };
            b.stats.idle_s = (end - b.stats.draft_s - b.stats.verify_s).max(0.0);
        }
        let completions: Vec<_> = branches.into_iter().map(Branch::into_completion).collect();
        for c in &completions {
            stats.generated_tokens += c.tokens.len();
            stats.drafted += c.stats.drafted;
            stats.accepted += c.stats.accepted;
        }
        Ok(Output {
            completions,
            stats,
            trace,
        })
    }

    fn tokenize(&self, request: &Request) -> Result<Vec<Vec<Token>>> {
        let context = self.target.context_size();
        request
            .prompts
            .iter()
            .enumerate()
            .map(|(index, p)| {
                let tokens = self.target.tokenize(p, true)?;
                if tokens.is_empty() {
                    return Err(DecodeError::Invalid(format!("prompt {index} is empty")));
                }
                if tokens.len() >= context {
                    return Err(DecodeError::PromptTooLong {
                        index,
                        tokens: tokens.len(),
                        context,
                    });
                }
                Ok(tokens)
            })
            .collect()
    }

    fn run(
        &mut self,
        branches: &mut [Branch],
        prompts: &[Vec<Token>],
        request: &Request,
        limits: &Limits,
        stats: &mut RunStats,
        start: Instant,
    ) -> Result<Vec<super::TraceEvent>> {
        for b in branches.iter_mut() {
            b.check_room(limits);
        }
        if self.config.kind == EngineKind::Ar {
            decode_ar(
                self.target.as_mut(),
                branches,
                request,
                limits,
                stats,
                start,
            )?;
            return Ok(Vec::new());
        }
        let draft = self
            .draft
            .as_mut()
            .expect("checked in Engine::new")
            .as_mut();
        let cache = self.config.prefix_cache.then_some(&mut self.draft_cache);
        attach_draft(draft, cache, branches, prompts)?;
        let mut spec = Speculator {
            target: self.target.as_mut(),
            draft,
            shape: self.config.shape(),
            request,
            limits,
            stats,
            start,
            trace: self.config.trace.then(Vec::new),
        };
        match self.config.kind {
            EngineKind::Sd | EngineKind::Mcsd => spec.run_one_by_one(branches)?,
            _ => spec.run_scheduled(branches, self.config.verify)?,
        }
        Ok(spec.trace.unwrap_or_default())
    }
}

/// Makes one branch per sample from the prompts' sequences (forks of them;
/// the last sample takes the sequence itself).
fn branches_from(
    model: &mut dyn Model,
    roots: Vec<SeqId>,
    prompts: &[Vec<Token>],
    request: &Request,
) -> Result<Vec<Branch>> {
    let mut branches = Vec::with_capacity(prompts.len() * request.n);
    for (p, (&root, prompt)) in roots.iter().zip(prompts).enumerate() {
        for s in 0..request.n {
            let seq = if s + 1 == request.n {
                root
            } else {
                model.fork(root)?
            };
            let mut b = Branch::new(branches.len(), p, s, prompt, request.seed, seq);
            b.target_cached = prompt.len() - 1;
            branches.push(b);
        }
    }
    Ok(branches)
}

/// Returns a new sequence per prompt holding all but its last token (which
/// every branch feeds itself), and how many of those tokens were not computed
/// (found in the prefix cache, or shared with another prompt of the request).
/// Without a cache each prompt is computed in full.
fn process_prompts(
    model: &mut dyn Model,
    cache: Option<&mut PrefixCache>,
    prompts: &[Vec<Token>],
) -> Result<(Vec<SeqId>, usize)> {
    let heads: Vec<&[Token]> = prompts.iter().map(|p| &p[..p.len() - 1]).collect();
    if let Some(cache) = cache {
        let (seqs, stats) = cache.prefill(model, &heads)?;
        let total: usize = heads.iter().map(|h| h.len()).sum();
        return Ok((seqs, total - stats.computed));
    }
    let seqs = heads
        .iter()
        .map(|_| model.create())
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let chunk = PREFILL_CHUNK.min(model.context_size());
    let mut batch = Vec::new();
    for (head, &seq) in heads.iter().zip(&seqs) {
        for (pos, &token) in head.iter().enumerate() {
            batch.push(BatchToken {
                token,
                pos,
                seqs: vec![seq],
                logits: false,
            });
            if batch.len() == chunk {
                model.forward(&batch)?;
                batch.clear();
            }
        }
    }
    model.forward(&batch)?;
    Ok((seqs, 0))
}

fn attach_draft(
    draft: &mut dyn Model,
    cache: Option<&mut PrefixCache>,
    branches: &mut [Branch],
    prompts: &[Vec<Token>],
) -> Result<()> {
    let (roots, _) = process_prompts(draft, cache, prompts)?;
    let mut last_user = vec![None; roots.len()];
    for (i, b) in branches.iter().enumerate() {
        last_user[b.prompt_index] = Some(i);
    }
    for (i, b) in branches.iter_mut().enumerate() {
        let root = roots[b.prompt_index];
        b.draft_seq = Some(if last_user[b.prompt_index] == Some(i) {
            root
        } else {
            draft.fork(root)?
        });
        b.draft_cached = b.prompt_len - 1;
    }
    Ok(())
}

/// Plain decoding: one token per branch per target forward, all live branches
/// in one batch.
fn decode_ar(
    model: &mut dyn Model,
    branches: &mut [Branch],
    request: &Request,
    limits: &Limits,
    stats: &mut RunStats,
    start: Instant,
) -> Result<()> {
    loop {
        let live: Vec<usize> = (0..branches.len())
            .filter(|&i| !branches[i].is_done())
            .collect();
        if live.is_empty() {
            return Ok(());
        }
        let mut batch = Vec::new();
        for &i in &live {
            push_pending(&mut batch, &branches[i], &[branches[i].target_seq]);
        }
        let t0 = Instant::now();
        model.forward(&batch)?;
        let elapsed = t0.elapsed().as_secs_f64();
        stats.target_forwards += 1;
        for (row, &i) in live.iter().enumerate() {
            let b = &mut branches[i];
            b.target_cached = b.tokens.len();
            b.stats.target_forwards += 1;
            b.stats.verify_s += elapsed;
            let token = choose(&request.sampling, model.logits(row), &mut b.target_rng);
            if !b.commit(token, model, limits) {
                b.finished_at = start.elapsed().as_secs_f64();
            }
        }
    }
}

/// Adds a branch's uncached tokens to a target batch, with logits for the last.
pub(crate) fn push_pending(batch: &mut Vec<BatchToken>, b: &Branch, seqs: &[SeqId]) {
    let n = b.tokens.len();
    for pos in b.target_cached..n {
        batch.push(BatchToken {
            token: b.tokens[pos],
            pos,
            seqs: seqs.to_vec(),
            logits: pos + 1 == n,
        });
    }
}
