//! The engine: one target (and draft) model and the continuous batch.
//!
//! A request is admitted between steps ([`Engine::admit`]): its prompts are
//! processed at once and its branches take part from the next step on.
//! Every step ([`Engine::step`]) plans a round over all ready branches,
//! whatever request they belong to (`scheduler`), executes it (`round`: for
//! `ar` one batched target forward, for `seed` batched drafting then
//! verification; `sd` and `mcsd` advance the oldest branch only, so requests
//! are served one after another), and hands out new text and finished
//! requests. A request leaves as soon as its last branch finishes, or when it
//! is cancelled ([`Engine::cancel`]); its sequences are freed at once. Every
//! branch has its own position-keyed noise, so a request's output does not
//! depend on what else is in the batch.

use super::admission::{Needs, Tokenized, PREFIX_CACHE_SHARE};
use super::batch::{finished_texts, Admitted, Batch, Event, RequestId};
use super::branch::{Branch, BranchStart, KvSeq, Limits, Origin};
use super::config::{EngineConfig, EngineKind};
use super::dedup::SamplePlan;
use super::error::{DecodeError, Result};
use super::faults;
use super::noise::Noise;
use super::output::{Output, RunStats};
use super::prefill::{process_prompts, sample_seqs};
use super::prefix::{PrefillStats, PrefixCache};
use super::request::Request;
use super::round::Round;
use super::sampling::Sampler;
use super::scheduler::{schedule, RoundPlan};
use crate::model::{Model, ModelError, SeqId, Token};
use std::sync::Arc;
use std::time::Instant;

pub struct Engine {
    pub target: Box<dyn Model>,
    pub draft: Option<Box<dyn Model>>,
    pub config: EngineConfig,
    /// Prompt prefixes kept across requests, per model (when enabled).
    target_cache: PrefixCache,
    draft_cache: PrefixCache,
    /// Branches in flight, of any number of requests.
    batch: Batch,
    /// Steps failed in a row (see [`Engine::recover`]).
    failed_steps: usize,
    /// Steps failed since the engine was made.
    faulted_steps: u64,
}

/// Failed steps in a row after which a fault other than a full KV cache
/// fails the requests of the step instead of being retried.
const MAX_STEP_RETRIES: usize = 3;

/// Most cached prefix nodes (each holds a sequence of the model), and at
/// most a quarter of the model's sequences, so that branches keep the rest.
const PREFIX_CACHE_NODES: usize = 64;

fn new_cache(model: &dyn Model) -> PrefixCache {
    let budget = (model.context_size() as f64 * PREFIX_CACHE_SHARE) as usize;
    let nodes = model.max_sequences().map_or(PREFIX_CACHE_NODES, |s| s / 4);
    PrefixCache::new(budget, nodes.min(PREFIX_CACHE_NODES))
}

/// A request's prompts processed, before its branches exist.
struct Prefilled {
    /// The prompts decoded (one per distinct prompt when deduplicating).
    prompts: Vec<Vec<Token>>,
    plan: SamplePlan,
    target_roots: Vec<SeqId>,
    draft_roots: Option<Vec<SeqId>>,
    stats: RunStats,
}

impl Engine {
    /// Checks that the draft (if any) shares the target's vocabulary.
    pub fn new(
        target: Box<dyn Model>,
        draft: Option<Box<dyn Model>>,
        config: EngineConfig,
    ) -> Result<Self> {
        if let Some(d) = &draft {
            check_vocab(d.as_ref(), target.as_ref())?;
        }
        if config.needs_draft_model() && draft.is_none() {
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
            failed_steps: 0,
            faulted_steps: 0,
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

    /// Computes `prompt` into the prefix caches as an earlier request would
    /// have, without keeping it for n-gram drafts; returns its tokens.
    pub fn warm_prefix_cache(&mut self, prompt: &str) -> Result<usize> {
        let request = Request {
            prompts: vec![prompt.to_string()],
            max_tokens: 1,
            ..Request::default()
        };
        let history = std::mem::take(&mut self.batch.history);
        let output = self.generate(&request);
        self.batch.history = history;
        Ok(output?.stats.prompt_tokens)
    }

    /// Renders a user message with the target's chat template.
    pub fn chat_prompt(&self, user: &str) -> Result<String> {
        Ok(self.target.chat_prompt(user)?)
    }

    /// Renders a conversation with the target's chat template.
    pub fn chat(&self, messages: &[crate::model::ChatMessage]) -> Result<String> {
        Ok(self.target.chat(messages)?)
    }

    /// Validates a request and tokenizes its prompts.
    pub fn tokenize(&self, request: Request) -> Result<Tokenized> {
        Tokenized::new(request, |p| self.target.tokenize(p, true))
    }

    /// What a request may take of the batch at most.
    pub fn needs(&self, tokenized: &Tokenized) -> Needs {
        Needs::of(tokenized, &self.config)
    }

    /// Runs one request to the end, alone in the batch.
    pub fn generate(&mut self, request: &Request) -> Result<Output> {
        if !self.batch.is_idle() {
            return Err(DecodeError::Invalid(
                "generate needs an idle engine, but requests are in flight".into(),
            ));
        }
        let id = self.admit(request, false)?;
        loop {
            for event in self.step() {
                match event {
                    Event::Done {
                        request,
                        mut output,
                    } if request == id => {
                        output.trace = self.batch.take_trace();
                        return Ok(output);
                    }
                    Event::Failed { request, error } if request == id => return Err(error),
                    _ => {}
                }
            }
        }
    }

    /// Admits a request; `stream` asks for [`Event::Delta`]s.
    pub fn admit(&mut self, request: &Request, stream: bool) -> Result<RequestId> {
        let tokenized = self.tokenize(request.clone())?;
        self.admit_tokenized(tokenized, stream)
    }

    /// Admits a tokenized request: its prompts are processed now and its
    /// branches take part from the next step on.
    pub fn admit_tokenized(&mut self, tokenized: Tokenized, stream: bool) -> Result<RequestId> {
        let start = Instant::now();
        tokenized.check_lengths(self.target.context_size())?;
        let prefilled = self.prefill(tokenized.prompts, &tokenized.request)?;
        self.batch.restart_if_idle(start);
        let id = self.batch.next_id();
        let branches = self.make_branches(&prefilled, &tokenized.request, id)?;
        let admitted = Admitted {
            id,
            stream,
            left: 0,
            completions: Vec::with_capacity(branches.len() + prefilled.plan.twins.len()),
            twins: prefilled.plan.twins,
            stats: prefilled.stats,
            start,
            target_forwards_at: 0,
            draft_forwards_at: 0,
        };
        self.batch.add(admitted, branches);
        Ok(id)
    }

    /// Processes the prompts a request decodes, in the target and (where it
    /// drafts) the draft model. With `dedup_greedy`, a greedy request decodes
    /// each distinct prompt once; the other samples are its twins.
    fn prefill(&mut self, mut all: Vec<Vec<Token>>, request: &Request) -> Result<Prefilled> {
        let start = Instant::now();
        let mut stats = RunStats {
            engine: self.config.to_string(),
            prompt_tokens: all.iter().map(Vec::len).sum(),
            ..RunStats::default()
        };
        let greedy = self.config.dedup_greedy && request.sampling.is_greedy();
        let plan = SamplePlan::new(&all, request.n, greedy);
        let prompts: Vec<Vec<Token>> = plan
            .leaders
            .iter()
            .map(|&p| std::mem::take(&mut all[p]))
            .collect();
        let cache = self.config.prefix_cache.then_some(&mut self.target_cache);
        let (target_roots, counts) = process_prompts(self.target.as_mut(), cache, &prompts)?;
        // A twin's prompt is not processed at all: count it as reused.
        stats.prompt_reused =
            counts.reused + stats.prompt_tokens - prompts.iter().map(Vec::len).sum::<usize>();
        stats.prompt_seams = counts.seams;
        let draft_roots = match self.draft_prefill(&prompts) {
            Ok(Some((roots, counts))) => {
                stats.draft_prompt_reused = counts.reused;
                Some(roots)
            }
            Ok(None) => None,
            Err(e) => {
                target_roots.iter().for_each(|&s| self.target.release(s));
                return Err(e);
            }
        };
        stats.prompt_s = start.elapsed().as_secs_f64();
        Ok(Prefilled {
            prompts,
            plan,
            target_roots,
            draft_roots,
            stats,
        })
    }

    /// The draft model's prompt sequences, where the engine drafts with it.
    fn draft_prefill(
        &mut self,
        prompts: &[Vec<Token>],
    ) -> Result<Option<(Vec<SeqId>, PrefillStats)>> {
        if !self.config.needs_draft_model() {
            return Ok(None);
        }
        let draft = self
            .draft
            .as_mut()
            .expect("checked in Engine::new")
            .as_mut();
        let cache = self.config.prefix_cache.then_some(&mut self.draft_cache);
        Ok(Some(process_prompts(draft, cache, prompts)?))
    }

    /// One branch per decoded sample, each with its own sequences.
    fn make_branches(
        &mut self,
        p: &Prefilled,
        request: &Request,
        id: RequestId,
    ) -> Result<Vec<Branch>> {
        let samples = p.plan.samples;
        let (target_seqs, draft_seqs) = self.fork_samples(p)?;
        let limits = Limits {
            max_tokens: request.max_tokens,
            stop: Arc::from(request.stop.as_slice()),
            context: self.target.context_size(),
        };
        let admitted_at = self.batch.now();
        let branches = target_seqs
            .iter()
            .enumerate()
            .map(|(k, &target_seq)| {
                let prompt_index = p.plan.leaders[k / samples];
                let sample_index = k % samples;
                let choice = prompt_index * request.n + sample_index;
                // The draft races on the target's noise, to agree with it.
                let noise = Noise::new(request.seed, prompt_index, sample_index);
                Branch::new(BranchStart {
                    origin: Origin {
                        request: id.0,
                        choice,
                        prompt_index,
                        sample_index,
                    },
                    prompt: &p.prompts[k / samples],
                    target_seq,
                    draft_seq: draft_seqs.as_ref().map(|d| d[k]),
                    target_sampler: Sampler::new(request.sampling.clone(), noise.clone()),
                    draft_sampler: Sampler::new(request.draft_sampling(), noise),
                    limits: limits.clone(),
                    draft_len: self.config.shape().depth(),
                    admitted_at,
                })
            })
            .collect();
        Ok(branches)
    }

    /// Each decoded sample's sequence in the target and, where it drafts
    /// with one, the draft model: forks of its prompt's (see `sample_seqs`).
    fn fork_samples(&mut self, p: &Prefilled) -> Result<(Vec<SeqId>, Option<Vec<SeqId>>)> {
        let samples = p.plan.samples;
        let target_seqs = match sample_seqs(self.target.as_mut(), &p.target_roots, samples) {
            Ok(seqs) => seqs,
            Err(e) => {
                self.release_draft_seqs(p.draft_roots.iter().flatten());
                return Err(e);
            }
        };
        let Some(roots) = &p.draft_roots else {
            return Ok((target_seqs, None));
        };
        let draft = self.draft.as_mut().expect("drafts").as_mut();
        match sample_seqs(draft, roots, samples) {
            Ok(draft_seqs) => Ok((target_seqs, Some(draft_seqs))),
            Err(e) => {
                target_seqs.iter().for_each(|&s| self.target.release(s));
                Err(e)
            }
        }
    }

    /// Advances every live branch by one round and reports new text and
    /// finished (or failed) requests. A failed forward fails only the
    /// requests it must (see [`Engine::recover`]); the rest go on.
    pub fn step(&mut self) -> Vec<Event> {
        faults::step();
        let plan = schedule(
            self.config.kind,
            self.config.verify,
            &self.batch.branches,
            self.batch.round,
        );
        match self.execute(&plan) {
            Ok(()) => {
                self.failed_steps = 0;
                self.harvest(plan.branches())
            }
            Err(error) => self.recover(plan.branches(), error),
        }
    }

    /// After a failed forward: the branches the round left part way go back
    /// to ready with their KV cut back to what they hold (a failed forward
    /// writes nothing, see `Model::forward`), so that the next step redoes
    /// their round with the same noise and the same output. A full KV cache
    /// fails the newest request, whose cells make room (vLLM preempts the
    /// same one); another fault is retried, and fails the step's requests
    /// after [`MAX_STEP_RETRIES`] in a row.
    fn recover(&mut self, touched: &[usize], error: DecodeError) -> Vec<Event> {
        self.faulted_steps += 1;
        let stepped = self.batch.requests_of(touched);
        let mut failing = self.roll_back();
        let mut events = self.harvest(touched);
        let full = matches!(
            error,
            DecodeError::Model(ModelError::CacheFull(_) | ModelError::OutOfSequences(_))
        );
        if full {
            failing.extend(self.batch.newest());
        } else {
            self.failed_steps += 1;
            if self.failed_steps > MAX_STEP_RETRIES {
                failing.extend(stepped);
            }
        }
        failing.sort_unstable();
        failing.dedup();
        for request in failing {
            if self.cancel(request) {
                let error = error.clone();
                events.push(Event::Failed { request, error });
            }
        }
        events
    }

    /// Takes every branch the failed round left part way back to ready.
    /// Returns the requests whose sequences could not be cut back.
    fn roll_back(&mut self) -> Vec<RequestId> {
        let mut broken = Vec::new();
        for b in self.batch.branches.iter_mut() {
            if !b.roll_back() {
                continue;
            }
            let target = b.target();
            let mut cut = self.target.truncate(target.seq, target.cached);
            if let (Some(d), Some(kv)) = (self.draft.as_mut(), b.draft()) {
                cut = cut.and(d.truncate(kv.seq, kv.cached));
            }
            if cut.is_err() {
                broken.push(RequestId(b.origin().request));
            }
        }
        broken
    }

    /// Runs a round's plan over the batch.
    fn execute(&mut self, plan: &RoundPlan) -> Result<()> {
        let batch = &mut self.batch;
        let uses_model = self.config.drafter.uses_model();
        // Finished branches' text stays available to n-gram lookups.
        let finished = match self.config.drafter.uses_ngrams() {
            true => finished_texts(&batch.requests),
            false => Vec::new(),
        };
        let mut round = Round {
            target: self.target.as_mut(),
            draft: self
                .draft
                .as_mut()
                .filter(|_| uses_model)
                .map(|d| -> &mut dyn Model { d.as_mut() }),
            shape: self.config.shape(),
            drafter: self.config.drafter,
            adaptive_gamma: self.config.adaptive_gamma,
            cost: self.config.cost_aware.then_some(&mut batch.cost),
            finished: &finished,
            history: &batch.history,
            counters: &mut batch.counters,
            start: batch.start,
            trace: self.config.trace.then_some(&mut batch.trace),
        };
        let branches = batch.branches.make_contiguous();
        round.run(branches, plan)?;
        match (self.config.kind, plan.branches()) {
            (_, []) => {}
            (EngineKind::Seed, _) => batch.round += 1,
            (EngineKind::Sd | EngineKind::Mcsd, &[i]) => branches[i].count_step(),
            _ => {}
        }
        Ok(())
    }

    /// Reports streamed text of the branches a step advanced, and moves
    /// finished branches out of the batch into their requests' outputs.
    fn harvest(&mut self, touched: &[usize]) -> Vec<Event> {
        let mut events = self.batch.stream_deltas(touched);
        let finished = self.batch.take_finished();
        if finished.is_empty() {
            return events;
        }
        if self.config.prefix_cache {
            self.keep_completions(&finished);
        }
        self.release(&finished);
        events.extend(self.batch.complete(finished, self.config.ngram_history));
        if self.batch.is_idle() {
            self.reclaim();
        }
        events
    }

    /// Keeps finished branches' prompts and text in the prefix caches of the
    /// target and of the draft model, as SGLang's radix cache keeps finished
    /// requests: a later prompt that begins with them (a search's next step,
    /// an evaluation of the state) reuses their KV in both models. A branch
    /// that cannot be kept just is not.
    fn keep_completions(&mut self, finished: &[Branch]) {
        for b in finished {
            keep_completion(&mut self.target_cache, self.target.as_mut(), b, b.target());
            if let (Some(draft), Some(mut kv)) = (self.draft.as_mut(), b.draft()) {
                // A draft sequence may be a token short of its count: the
                // tokens last counted for it were never fed.
                kv.cached = kv.cached.min(draft.seq_len(kv.seq).unwrap_or(0));
                keep_completion(&mut self.draft_cache, draft.as_mut(), b, kv);
            }
        }
    }

    /// Drops a request in flight and frees its sequences. Returns whether it
    /// was in flight.
    pub fn cancel(&mut self, id: RequestId) -> bool {
        let Some(gone) = self.batch.remove(id) else {
            return false;
        };
        self.release(&gone);
        if self.batch.is_idle() {
            self.reclaim();
        }
        true
    }

    /// Steps whose forward failed (and that were recovered from).
    pub fn faulted_steps(&self) -> u64 {
        self.faulted_steps
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.batch.in_flight()
    }

    /// Branches in flight (finished ones leave after the step that ends them).
    pub fn live_branches(&self) -> usize {
        self.batch.branches.len()
    }

    /// Frees the sequences of branches.
    fn release(&mut self, branches: &[Branch]) {
        for b in branches {
            self.target.release(b.target().seq);
            if let (Some(d), Some(kv)) = (self.draft.as_mut(), b.draft()) {
                d.release(kv.seq);
            }
        }
    }

    fn release_draft_seqs<'a>(&mut self, seqs: impl Iterator<Item = &'a SeqId>) {
        if let Some(d) = self.draft.as_mut() {
            seqs.for_each(|&s| d.release(s));
        }
    }

    /// Frees dropped tokens' cells, once the batch is idle, where the
    /// prefix cache allows it (see `prefix`).
    fn reclaim(&mut self) {
        if self.target_cache.may_reclaim(self.target.as_ref()) {
            self.target.reclaim();
        }
        if let Some(d) = self.draft.as_mut() {
            if self.draft_cache.may_reclaim(d.as_ref()) {
                d.reclaim();
            }
        }
    }
}

/// Keeps the tokens of `branch` that `kv` holds in `cache`.
fn keep_completion(cache: &mut PrefixCache, model: &mut dyn Model, branch: &Branch, kv: KvSeq) {
    let tokens = &branch.tokens()[..kv.cached];
    if let Err(e) = cache.insert_completion(model, tokens, kv.seq) {
        eprintln!("warning: a completion was not kept in the prefix cache: {e}");
    }
}

/// A draft model must share the target's vocabulary, token for token.
fn check_vocab(draft: &dyn Model, target: &dyn Model) -> Result<()> {
    let why = if draft.vocab_size() != target.vocab_size() {
        format!(
            "{} tokens against {}",
            draft.vocab_size(),
            target.vocab_size()
        )
    } else if draft.vocab_fingerprint() != target.vocab_fingerprint() {
        "same size, different tokens".to_string()
    } else {
        return Ok(());
    };
    Err(DecodeError::VocabMismatch {
        draft: draft.name().to_string(),
        target: target.name().to_string(),
        why,
    })
}
