//! The engine: validates a request, prepares its branches and runs the
//! configured decoding method over them (step by step in `batch`).

use super::batch::{Batch, Event};
use super::branch::Branch;
use super::prefix::PrefixCache;
use super::{
    BranchStats, Completion, DecodeError, EngineConfig, EngineKind, Output, Request, Result,
    RunStats,
};
use crate::model::{BatchToken, Model, SeqId, Token};
use std::collections::HashMap;

/// Most tokens of one prompt-processing forward.
const PREFILL_CHUNK: usize = 1024;

pub struct Engine {
    pub target: Box<dyn Model>,
    pub draft: Option<Box<dyn Model>>,
    pub config: EngineConfig,
    /// Prompt prefixes kept across requests, per model (when enabled).
    target_cache: PrefixCache,
    draft_cache: PrefixCache,
    /// Branches in flight, of any number of requests.
    pub(super) batch: Batch,
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
        if config.kind != EngineKind::Ar && config.drafter.uses_model() && draft.is_none() {
            return Err(DecodeError::NeedsDraft(config.kind));
        }
        config.check().map_err(DecodeError::Invalid)?;
        let target_cache = new_cache(target.as_ref());
        let draft_cache = new_cache(draft.as_deref().unwrap_or(target.as_ref()));
        Ok(Engine {
            target,
            draft,
            config,
            target_cache,
            draft_cache,
            batch: Batch::default(),
        })
    }

    /// Forgets every cached prompt prefix and the past requests kept for
    /// n-gram drafts (so that a measurement starts cold).
    pub fn forget_past_requests(&mut self) {
        self.batch.history.clear();
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

    /// Renders a conversation with the target's chat template.
    pub fn chat(&self, messages: &[crate::model::ChatMessage]) -> Result<String> {
        Ok(self.target.chat(messages)?)
    }

    /// Runs one request to the end. Built on the step-wise batch (see
    /// `batch`), with this request alone in it.
    pub fn generate(&mut self, request: &Request) -> Result<Output> {
        if !self.batch.is_idle() {
            return Err(DecodeError::Invalid(
                "generate needs an idle engine, but requests are in flight".into(),
            ));
        }
        let id = self.admit(request, false)?;
        loop {
            for event in self.step()? {
                if let Event::Done {
                    request,
                    mut output,
                } = event
                {
                    if request == id {
                        output.trace = self.batch.take_trace();
                        return Ok(output);
                    }
                }
            }
        }
    }

    /// Validates and tokenizes a request, processes its prompts and makes its
    /// branches (one per sample, draft attached for speculative engines).
    /// With `dedup_greedy`, a greedy request decodes each distinct prompt
    /// once; the other samples are its twins and get copies of its completion.
    pub(super) fn prepare(
        &mut self,
        request: &Request,
    ) -> Result<(Vec<Branch>, Vec<Twin>, RunStats)> {
        request.validate()?;
        let start = std::time::Instant::now();
        let mut all = self.tokenize(request)?;
        let mut stats = RunStats {
            engine: self.config.label(),
            prompt_tokens: all.iter().map(Vec::len).sum(),
            ..RunStats::default()
        };
        let greedy = self.config.dedup_greedy && request.sampling.is_greedy();
        let plan = Plan::new(&all, request.n, greedy);
        let prompts: Vec<Vec<Token>> = plan
            .leaders
            .iter()
            .map(|&p| std::mem::take(&mut all[p]))
            .collect();
        let cache = self.config.prefix_cache.then_some(&mut self.target_cache);
        let (roots, reused) = process_prompts(self.target.as_mut(), cache, &prompts)?;
        // A twin's prompt is not processed at all: count it as reused.
        stats.prompt_reused =
            reused + stats.prompt_tokens - prompts.iter().map(Vec::len).sum::<usize>();
        let mut branches = branches_from(self.target.as_mut(), roots, &prompts, &plan, request)?;
        let draft_len = self.config.shape().depth();
        for b in &mut branches {
            b.draft_len = draft_len;
        }
        if self.config.kind != EngineKind::Ar && self.config.drafter.uses_model() {
            let draft = self
                .draft
                .as_mut()
                .expect("checked in Engine::new")
                .as_mut();
            let cache = self.config.prefix_cache.then_some(&mut self.draft_cache);
            if let Err(e) = attach_draft(draft, cache, &mut branches, &prompts, plan.samples) {
                self.release(&branches);
                return Err(e);
            }
        }
        stats.prompt_s = start.elapsed().as_secs_f64();
        Ok((branches, plan.twins, stats))
    }

    /// Frees the sequences of branches.
    pub(super) fn release(&mut self, branches: &[Branch]) {
        for b in branches {
            self.target.release(b.target_seq);
            if let (Some(d), Some(s)) = (self.draft.as_mut(), b.draft_seq) {
                d.release(s);
            }
        }
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
}

/// A sample that is not decoded: it copies the completion of the branch
/// with choice index `of` (same prompt, greedy).
#[derive(Clone, Copy, Debug)]
pub(super) struct Twin {
    pub of: usize,
    /// Its own choice index (prompt-major) and place in the request.
    pub choice: usize,
    pub prompt_index: usize,
    pub sample_index: usize,
}

impl Twin {
    /// Its completion: the leader's tokens, none of the leader's work.
    pub fn copy(&self, leader: &Completion) -> Completion {
        Completion {
            prompt_index: self.prompt_index,
            sample_index: self.sample_index,
            stats: BranchStats::default(),
            ..leader.clone()
        }
    }
}

/// Which prompts are decoded, with how many samples each, and which samples
/// copy another's completion instead.
struct Plan {
    /// Indices of the prompts decoded, in order.
    leaders: Vec<usize>,
    /// Samples decoded per leading prompt.
    samples: usize,
    twins: Vec<Twin>,
}

impl Plan {
    /// Every sample decoded, or with `greedy` one sample of each distinct
    /// prompt: at temperature 0 the others would be the same tokens.
    fn new(prompts: &[Vec<Token>], n: usize, greedy: bool) -> Self {
        if !greedy {
            return Plan {
                leaders: (0..prompts.len()).collect(),
                samples: n,
                twins: Vec::new(),
            };
        }
        let mut first: HashMap<&[Token], usize> = HashMap::new();
        let (mut leaders, mut twins) = (Vec::new(), Vec::new());
        for (p, prompt) in prompts.iter().enumerate() {
            let leader = *first.entry(prompt).or_insert_with(|| {
                leaders.push(p);
                p
            });
            for s in 0..n {
                if (p, s) != (leader, 0) {
                    twins.push(Twin {
                        of: leader * n,
                        choice: p * n + s,
                        prompt_index: p,
                        sample_index: s,
                    });
                }
            }
        }
        Plan {
            leaders,
            samples: 1,
            twins,
        }
    }
}

/// Makes the decoded samples' branches from their prompts' sequences (forks
/// of them; the last sample takes the sequence itself).
fn branches_from(
    model: &mut dyn Model,
    roots: Vec<SeqId>,
    prompts: &[Vec<Token>],
    plan: &Plan,
    request: &Request,
) -> Result<Vec<Branch>> {
    let mut branches = Vec::with_capacity(prompts.len() * plan.samples);
    for (j, (&root, prompt)) in roots.iter().zip(prompts).enumerate() {
        let p = plan.leaders[j];
        for s in 0..plan.samples {
            let seq = if s + 1 == plan.samples {
                root
            } else {
                match model.fork(root) {
                    Ok(seq) => seq,
                    Err(e) => {
                        // Out of sequences: free what this request holds.
                        for seq in branches.iter().map(|b: &Branch| b.target_seq) {
                            model.release(seq);
                        }
                        for &root in &roots[j..] {
                            model.release(root);
                        }
                        return Err(e.into());
                    }
                }
            };
            let mut b = Branch::new(p * request.n + s, p, s, prompt, request.seed, seq);
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

/// Gives every branch a draft sequence: branches come `samples` per prompt,
/// in the prompts' order.
fn attach_draft(
    draft: &mut dyn Model,
    cache: Option<&mut PrefixCache>,
    branches: &mut [Branch],
    prompts: &[Vec<Token>],
    samples: usize,
) -> Result<()> {
    let (roots, _) = process_prompts(draft, cache, prompts)?;
    for (i, b) in branches.iter_mut().enumerate() {
        let root = roots[i / samples];
        b.draft_seq = Some(if i % samples == samples - 1 {
            root
        } else {
            draft.fork(root)?
        });
        b.draft_cached = b.prompt_len - 1;
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_greedy_plan_decodes_each_distinct_prompt_once() {
        let prompts = vec![vec![1, 2], vec![3], vec![1, 2]];
        let plan = Plan::new(&prompts, 2, true);
        assert_eq!((plan.leaders.as_slice(), plan.samples), (&[0, 1][..], 1));
        let twins: Vec<_> = plan
            .twins
            .iter()
            .map(|t| (t.of, t.choice, t.prompt_index, t.sample_index))
            .collect();
        assert_eq!(
            twins,
            [(0, 1, 0, 1), (2, 3, 1, 1), (0, 4, 2, 0), (0, 5, 2, 1)]
        );

        let all = Plan::new(&prompts, 2, false);
        assert_eq!((all.leaders.as_slice(), all.samples), (&[0, 1, 2][..], 2));
        assert!(all.twins.is_empty());
    }
}
