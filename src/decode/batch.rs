//! Continuous batching: the live branches of every admitted request, and
//! each request's bookkeeping until its last branch finishes.

use super::branch::Branch;
use super::cost::CostModel;
use super::dedup::Twin;
use super::error::DecodeError;
use super::ngram::History;
use super::output::{Completion, FinishReason, Output, RunStats, TraceEvent};
use crate::model::Token;
use std::collections::VecDeque;
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
    /// The request was dropped by a fault it cannot outlive (its sequences
    /// are freed); the other requests go on.
    Failed {
        request: RequestId,
        error: DecodeError,
    },
}

/// Bookkeeping of one admitted request.
pub(crate) struct Admitted {
    pub id: RequestId,
    pub stream: bool,
    /// Its branches still in the batch.
    pub left: usize,
    /// Samples that copy a branch's completion instead of being decoded.
    pub twins: Vec<Twin>,
    pub completions: Vec<Completion>,
    pub stats: RunStats,
    pub start: Instant,
    /// The batch's forward counts when it was admitted.
    pub target_forwards_at: usize,
    pub draft_forwards_at: usize,
}

/// The live branches of every admitted request.
pub(crate) struct Batch {
    /// In admission order; finished ones are removed after each step.
    pub branches: VecDeque<Branch>,
    /// Whether branches were admitted since the last step (some may have
    /// finished at once, with no room to generate).
    admitted: bool,
    pub requests: Vec<Admitted>,
    next_id: u64,
    /// Clock of the trace and of branch timings; restarts when the batch empties.
    pub start: Instant,
    pub round: usize,
    /// Forward counts of the whole batch.
    pub counters: RunStats,
    pub trace: Vec<TraceEvent>,
    /// Forward costs and acceptance learnt for cost-aware drafting (kept
    /// for the engine's life: they describe the machine and the models).
    pub cost: CostModel,
    /// Past requests' prompt ends and completions, for n-gram drafts.
    pub history: History,
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

    pub fn in_flight(&self) -> usize {
        self.requests.len()
    }

    pub fn take_trace(&mut self) -> Vec<TraceEvent> {
        std::mem::take(&mut self.trace)
    }

    pub fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// The id the next admitted request gets.
    pub fn next_id(&self) -> RequestId {
        RequestId(self.next_id)
    }

    /// Starts the clock and rounds again if nothing is in flight.
    pub fn restart_if_idle(&mut self, start: Instant) {
        if self.is_idle() {
            self.start = start;
            self.round = 0;
        }
    }

    /// Adds a request (its id from [`Batch::next_id`]) and its branches.
    pub fn add(&mut self, mut request: Admitted, branches: Vec<Branch>) {
        debug_assert_eq!(request.id, self.next_id());
        self.next_id += 1;
        request.left = branches.len();
        request.target_forwards_at = self.counters.target_forwards;
        request.draft_forwards_at = self.counters.draft_forwards;
        self.requests.push(request);
        self.branches.extend(branches);
        self.admitted = true;
    }

    /// The request admitted last, the first to give way when the KV cache
    /// is full (as vLLM preempts).
    pub fn newest(&self) -> Option<RequestId> {
        self.requests.last().map(|r| r.id)
    }

    /// The requests that branches `ids` belong to, once each.
    pub fn requests_of(&self, ids: &[usize]) -> Vec<RequestId> {
        let mut requests: Vec<RequestId> = ids
            .iter()
            .map(|&i| RequestId(self.branches[i].origin().request))
            .collect();
        requests.sort_unstable();
        requests.dedup();
        requests
    }

    /// Removes one request; returns its branches, or `None` if it is not here.
    pub fn remove(&mut self, id: RequestId) -> Option<Vec<Branch>> {
        let at = self.requests.iter().position(|r| r.id == id)?;
        self.requests.remove(at);
        let (gone, kept): (VecDeque<Branch>, VecDeque<Branch>) = std::mem::take(&mut self.branches)
            .into_iter()
            .partition(|b| b.origin().request == id.0);
        self.branches = kept;
        Some(gone.into())
    }

    fn request_of(&self, b: &Branch) -> &Admitted {
        self.requests
            .iter()
            .find(|r| r.id.0 == b.origin().request)
            .expect("every branch belongs to an admitted request")
    }

    /// Streamed text of the branches a step advanced (and of all branches
    /// after an admission: some may have ended at once), for itself and its
    /// twins.
    pub fn stream_deltas(&mut self, touched: &[usize]) -> Vec<Event> {
        let candidates: Vec<usize> = if std::mem::take(&mut self.admitted) {
            (0..self.branches.len()).collect()
        } else {
            touched.to_vec()
        };
        let mut events = Vec::new();
        for i in candidates {
            let (id, stream) = {
                let r = self.request_of(&self.branches[i]);
                (r.id, r.stream)
            };
            if !stream {
                continue;
            }
            let b = &mut self.branches[i];
            let text = b.take_delta();
            if text.is_empty() && !b.is_done() {
                continue;
            }
            let (choice, finish) = (b.origin().choice, b.finish_reason());
            let r = self.request_of(&self.branches[i]);
            let twins = r.twins.iter().filter(|t| t.of == choice);
            for choice in std::iter::once(choice).chain(twins.map(|t| t.choice)) {
                events.push(Event::Delta {
                    request: id,
                    choice,
                    text: text.clone(),
                    finish,
                });
            }
        }
        events
    }

    /// Moves the finished branches out of the batch.
    pub fn take_finished(&mut self) -> Vec<Branch> {
        let done = self.branches.iter().take_while(|b| b.is_done()).count();
        if !self.branches.iter().skip(done).any(Branch::is_done) {
            // `sd` finishes branches at the front: no need to move the others.
            return self.branches.drain(..done).collect();
        }
        let (finished, kept): (VecDeque<Branch>, VecDeque<Branch>) =
            std::mem::take(&mut self.branches)
                .into_iter()
                .partition(Branch::is_done);
        self.branches = kept;
        finished.into()
    }

    /// Files finished branches' completions (and their twins' copies) with
    /// their requests; a request whose last branch finished leaves with its
    /// output. With `record`, the history learns each branch's text.
    pub fn complete(&mut self, finished: Vec<Branch>, record: bool) -> Vec<Event> {
        let now = self.now();
        let mut events = Vec::new();
        for b in finished {
            if record {
                self.history
                    .record(b.prompt(), b.generated_tokens(), b.ended_by());
            }
            let origin = b.origin();
            let at = self
                .requests
                .iter()
                .position(|r| r.id.0 == origin.request)
                .expect("admitted request");
            let r = &mut self.requests[at];
            let completion = b.into_completion(now);
            for t in r.twins.iter().filter(|t| t.of == origin.choice) {
                r.stats.copied_tokens += completion.tokens.len();
                r.completions.push(t.copy(&completion));
            }
            r.completions.push(completion);
            r.left -= 1;
            if r.left == 0 {
                let r = self.requests.remove(at);
                events.push(Event::Done {
                    request: r.id,
                    output: finish_output(r, &self.counters),
                });
            }
        }
        events
    }
}

/// Generated tokens of the finished branches of every request (for n-gram
/// lookups), with their request.
pub(crate) fn finished_texts(requests: &[Admitted]) -> Vec<(u64, &[Token])> {
    requests
        .iter()
        .flat_map(|r| r.completions.iter().map(|c| (r.id.0, &c.tokens[..])))
        .collect()
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
