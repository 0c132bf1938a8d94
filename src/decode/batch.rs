//! Continuous batching: the branches of many requests in one scheduler.
//!
//! A request is admitted between steps ([`Engine::admit`]); every step
//! ([`Engine::step`]) advances all live branches, whatever request they
//! belong to, by one round of the configured engine: for `ar` one batched
//! target forward, for `seed` one SeeD round (batched drafting, then
//! verification); `sd` and `mcsd` advance the oldest live branch only, so
//! requests are served one after another. A request leaves as soon as its
//! last branch finishes, or when it is cancelled ([`Engine::cancel`]); its
//! sequences are freed at once. Every branch keeps its own random streams, so
//! a request's output does not depend on what else is in the batch.

use super::branch::{Branch, Limits};
use super::cost::CostModel;
use super::engine::{push_pending, Twin};
use super::ngram::History;
use super::sampling::choose;
use super::scheduler::Speculator;
use super::{
    Completion, Engine, EngineKind, FinishReason, Output, Request, Result, RunStats, TraceEvent,
};
use crate::model::{Model, Token};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

/// A request admitted into the batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// What a step produced.
#[derive(Debug)]
pub enum Event {
    /// New text of one completion of a streamed request; `finish` is set on
    /// the completion's last delta. `choice` is the completion's index in the
    /// request's output (prompt-major).
    Delta {
        request: RequestId,
        choice: usize,
        text: String,
        finish: Option<FinishReason>,
    },
    /// Every completion of the request has finished.
    Done { request: RequestId, output: Output },
}

/// Bookkeeping of one admitted request.
struct Admitted {
    id: RequestId,
    stream: bool,
    /// Its branches still in the batch.
    left: usize,
    /// Samples that copy a branch's completion instead of being decoded.
    twins: Vec<Twin>,
    completions: Vec<Completion>,
    stats: RunStats,
    start: Instant,
    /// The batch's forward counts when it was admitted.
    target_forwards_at: usize,
    draft_forwards_at: usize,
}

/// The live branches of every admitted request.
pub(crate) struct Batch {
    /// In admission order; finished ones are removed after each step.
    branches: VecDeque<Branch>,
    /// Whether branches were admitted since the last step (some may have
    /// finished at once, with no room to generate).
    admitted: bool,
    requests: Vec<Admitted>,
    next_id: u64,
    /// Clock of the trace and of branch timings; restarts when the batch empties.
    start: Instant,
    round: usize,
    /// Forward counts of the whole batch.
    counters: RunStats,
    trace: Vec<TraceEvent>,
    /// Forward costs and acceptance learnt for cost-aware drafting (kept
    /// for the engine's life: they describe the machine and the models).
    cost: CostModel,
    /// Past requests' prompt ends and completions, for n-gram drafts.
    pub(super) history: History,
}

impl Default for Batch {
    fn default() -> Self {
        Batch {
            branches: VecDeque::new(),
            admitted: false,
            requests: Vec::new(),
            next_id: 0,
            start: Instant::now(),
            round: 0,
            counters: RunStats::default(),
            trace: Vec::new(),
            cost: CostModel::default(),
            history: History::default(),
        }
    }
}

impl Batch {
    pub fn is_idle(&self) -> bool {
        self.requests.is_empty()
    }

    pub fn take_trace(&mut self) -> Vec<TraceEvent> {
        std::mem::take(&mut self.trace)
    }

    fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }
}

impl Engine {
    /// Admits a request: its prompts are processed now and its branches take
    /// part from the next step on. `stream` asks for [`Event::Delta`]s.
    pub fn admit(&mut self, request: &Request, stream: bool) -> Result<RequestId> {
        let start = Instant::now();
        let (mut branches, twins, stats) = self.prepare(request)?;
        if self.batch.is_idle() {
            // A fresh batch: rounds and the trace's clock start again.
            self.batch.start = start;
            self.batch.round = 0;
        }
        let id = RequestId(self.batch.next_id);
        self.batch.next_id += 1;
        let limits = Limits {
            max_tokens: request.max_tokens,
            stop: Arc::from(request.stop.as_slice()),
            context: self.target.context_size(),
        };
        let now = self.batch.now();
        for b in &mut branches {
            b.request = id.0;
            b.sampling = request.sampling.clone();
            b.draft_sampling = request.draft_sampling();
            b.limits = limits.clone();
            b.admitted_at = now;
            b.check_room();
        }
        self.batch.requests.push(Admitted {
            id,
            stream,
            left: branches.len(),
            completions: Vec::with_capacity(branches.len() + twins.len()),
            twins,
            stats,
            start,
            target_forwards_at: self.batch.counters.target_forwards,
            draft_forwards_at: self.batch.counters.draft_forwards,
        });
        self.batch.branches.extend(branches);
        self.batch.admitted = true;
        Ok(id)
    }

    /// Advances every live branch by one round and reports new text and
    /// finished requests. On an error every request in flight is dropped
    /// (the KV cache's state is unknown) and their sequences freed.
    pub fn step(&mut self) -> Result<Vec<Event>> {
        match self.advance() {
            Ok(touched) => Ok(self.harvest(touched)),
            Err(e) => {
                let branches: Vec<Branch> = std::mem::take(&mut self.batch.branches).into();
                self.release(&branches);
                self.batch.requests.clear();
                self.reclaim();
                Err(e)
            }
        }
    }

    /// Drops a request in flight and frees its sequences. Returns whether it
    /// was in flight.
    pub fn cancel(&mut self, id: RequestId) -> bool {
        let Some(at) = self.batch.requests.iter().position(|r| r.id == id) else {
            return false;
        };
        self.batch.requests.remove(at);
        let (gone, kept): (VecDeque<Branch>, VecDeque<Branch>) =
            std::mem::take(&mut self.batch.branches)
                .into_iter()
                .partition(|b| b.request == id.0);
        self.batch.branches = kept;
        self.release(&Vec::from(gone));
        if self.batch.is_idle() {
            self.reclaim();
        }
        true
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.batch.requests.len()
    }

    /// Branches in flight (finished ones leave after the step that ends them).
    pub fn live_branches(&self) -> usize {
        self.batch.branches.len()
    }

    fn reclaim(&mut self) {
        self.target.reclaim();
        if let Some(d) = self.draft.as_mut() {
            d.reclaim();
        }
    }

    /// Runs one round; returns the indices of the branches it advanced.
    fn advance(&mut self) -> Result<Vec<usize>> {
        let batch = &mut self.batch;
        let kind = self.config.kind;
        let live: Vec<usize> = match kind {
            // One branch at a time by definition: the oldest goes first.
            // Finished ones leave the front after each step, so this is quick.
            EngineKind::Sd | EngineKind::Mcsd => batch
                .branches
                .iter()
                .position(|b| !b.is_done())
                .into_iter()
                .collect(),
            _ => (0..batch.branches.len())
                .filter(|&i| !batch.branches[i].is_done())
                .collect(),
        };
        if live.is_empty() {
            return Ok(live);
        }
        if kind == EngineKind::Ar {
            ar_step(self.target.as_mut(), batch, &live)?;
            return Ok(live);
        }
        // Finished branches' text stays available to n-gram lookups.
        let finished: Vec<(u64, &[Token])> = match self.config.drafter.uses_ngrams() {
            true => batch
                .requests
                .iter()
                .flat_map(|r| r.completions.iter().map(|c| (r.id.0, &c.tokens[..])))
                .collect(),
            false => Vec::new(),
        };
        let mut spec = Speculator {
            target: self.target.as_mut(),
            draft: self
                .draft
                .as_mut()
                .filter(|_| self.config.drafter.uses_model())
                .map(|d| -> &mut dyn Model { d.as_mut() }),
            shape: self.config.shape(),
            drafter: self.config.drafter,
            adaptive_gamma: self.config.adaptive_gamma,
            cost: self.config.cost_aware.then_some(&mut batch.cost),
            finished: &finished,
            history: &batch.history,
            stats: &mut batch.counters,
            start: batch.start,
            trace: self.config.trace.then_some(&mut batch.trace),
        };
        let branches = batch.branches.make_contiguous();
        if let EngineKind::Sd | EngineKind::Mcsd = kind {
            spec.step_one(branches, live[0])?;
        } else {
            spec.round(branches, &live, self.config.verify, batch.round)?;
            batch.round += 1;
        }
        Ok(live)
    }

    /// Reports streamed text of the branches a step advanced, and moves
    /// finished branches out of the batch into their requests' outputs.
    fn harvest(&mut self, touched: Vec<usize>) -> Vec<Event> {
        let batch = &mut self.batch;
        // Branches admitted since the last step may have ended at once.
        let candidates: Vec<usize> = if std::mem::take(&mut batch.admitted) {
            (0..batch.branches.len()).collect()
        } else {
            touched
        };
        let mut events = Vec::new();
        let mut done = Vec::new();
        for i in candidates {
            let b = &mut batch.branches[i];
            let request = batch
                .requests
                .iter()
                .find(|r| r.id.0 == b.request)
                .expect("every branch belongs to an admitted request");
            if request.stream {
                let text = b.take_delta();
                if !text.is_empty() || b.is_done() {
                    let twins = request.twins.iter().filter(|t| t.of == b.index);
                    for choice in std::iter::once(b.index).chain(twins.map(|t| t.choice)) {
                        events.push(Event::Delta {
                            request: request.id,
                            choice,
                            text: text.clone(),
                            finish: b.finish,
                        });
                    }
                }
            }
            if b.is_done() {
                done.push(i);
            }
        }
        if done.is_empty() {
            return events;
        }
        // `sd` finishes branches at the front: no need to move the others.
        let finished: Vec<Branch> = if done.iter().enumerate().all(|(k, &i)| k == i) {
            batch.branches.drain(..done.len()).collect()
        } else {
            let (finished, kept): (VecDeque<Branch>, VecDeque<Branch>) =
                std::mem::take(&mut batch.branches)
                    .into_iter()
                    .partition(Branch::is_done);
            batch.branches = kept;
            finished.into()
        };
        self.release(&finished);
        let now = self.batch.now();
        for mut b in finished {
            let end = if b.finished_at > 0.0 {
                b.finished_at
            } else {
                now
            };
            b.stats.idle_s = (end - b.admitted_at - b.stats.draft_s - b.stats.verify_s).max(0.0);
            let at = self
                .batch
                .requests
                .iter()
                .position(|r| r.id.0 == b.request)
                .expect("admitted request");
            let r = &mut self.batch.requests[at];
            if self.config.ngram_history {
                let (prompt, generated) = b.tokens.split_at(b.prompt_len);
                self.batch.history.record(prompt, generated, b.ended_by);
            }
            let index = b.index;
            let completion = b.into_completion();
            for t in r.twins.iter().filter(|t| t.of == index) {
                r.stats.copied_tokens += completion.tokens.len();
                r.completions.push(t.copy(&completion));
            }
            r.completions.push(completion);
            r.left -= 1;
            if r.left == 0 {
                let r = self.batch.requests.remove(at);
                events.push(Event::Done {
                    request: r.id,
                    output: finish_output(r, &self.batch.counters),
                });
            }
        }
        if self.batch.is_idle() {
            self.reclaim();
        }
        events
    }
}

/// A finished request's output: completions in prompt, then sample order.
fn finish_output(r: Admitted, counters: &RunStats) -> Output {
    let mut completions = r.completions;
    completions.sort_by_key(|c| (c.prompt_index, c.sample_index));
    let mut stats = r.stats;
    stats.wall_s = r.start.elapsed().as_secs_f64();
    stats.target_forwards = counters.target_forwards - r.target_forwards_at;
    stats.draft_forwards = counters.draft_forwards - r.draft_forwards_at;
    for c in &completions {
        stats.generated_tokens += c.tokens.len();
        stats.drafted += c.stats.drafted;
        stats.accepted += c.stats.accepted;
    }
    Output {
        completions,
        stats,
        trace: Vec::new(),
    }
}

/// Plain decoding: one token for each live branch in one target forward.
fn ar_step(model: &mut dyn Model, batch: &mut Batch, live: &[usize]) -> Result<()> {
    let mut tokens = Vec::new();
    for &i in live {
        let b = &batch.branches[i];
        push_pending(&mut tokens, b, &[b.target_seq]);
    }
    let t0 = Instant::now();
    model.forward(&tokens)?;
    let elapsed = t0.elapsed().as_secs_f64();
    batch.counters.target_forwards += 1;
    let now = batch.now();
    for (row, &i) in live.iter().enumerate() {
        let b = &mut batch.branches[i];
        b.target_cached = b.tokens.len();
        b.stats.target_forwards += 1;
        b.stats.verify_s += elapsed;
        let token = choose(&b.sampling, model.logits(row), &mut b.target_rng);
        if !b.commit(token, model) {
            b.finished_at = now;
        }
    }
    Ok(())
}
