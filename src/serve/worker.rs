//! The engine worker: one thread owns the engine (models need not be `Send`)
//! and runs the continuous batch. Handlers send it jobs over a channel; each
//! job carries the channel its events go back on. A job whose receiver is
//! gone (the client disconnected) is cancelled and its sequences freed.

use super::openai::{ApiError, Limits, Parsed};
use super::prepare::prepare;
use crate::decode::{
    Capacity, DecodeError, Engine, Event, FinishReason, Needs, Output, RequestId, RunStats,
    Tokenized,
};
use crate::model::{ModelError, Text};
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc::{error::TryRecvError, UnboundedReceiver, UnboundedSender};

pub struct Job {
    pub parsed: Parsed,
    /// Prepared on the HTTP side (`None`: the worker prepares it).
    pub tokenized: Option<Tokenized>,
    pub events: UnboundedSender<JobEvent>,
}

pub enum Command {
    Submit(Box<Job>),
    /// Take no new jobs; finish the ones taken, then exit.
    Stop,
}

#[derive(Debug)]
pub enum JobEvent {
    /// Passed the checks that need the model; waiting for room in the batch.
    Accepted,
    Rejected(ApiError),
    Delta {
        choice: usize,
        text: String,
        finish: Option<FinishReason>,
    },
    Done(Output),
    Failed(ApiError),
}

/// What `/health` reports.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Health {
    /// Requests in the batch.
    pub in_flight: usize,
    /// Requests waiting for room in the batch (or for the worker).
    pub queued: usize,
    /// Branches in the batch (one per prompt and sample).
    pub live_branches: usize,
    /// Sequences alive in the models' KV caches (requests' and the prefix cache's).
    pub target_sequences: Option<usize>,
    pub draft_sequences: Option<usize>,
    pub completed: u64,
    /// Requests whose client went away before they finished.
    pub cancelled: u64,
    pub failed: u64,
    /// Completed requests' statistics added up (prompt tokens computed and
    /// reused, prompt seconds, tokens generated, drafted and accepted...): where
    /// a client's time went. `wall_s` adds up their wall times.
    pub totals: RunStats,
    /// Engine steps (rounds) run.
    pub steps: u64,
    /// Steps whose forward failed; their requests were retried or failed.
    pub faulted_steps: u64,
}

/// State shared with the HTTP handlers.
#[derive(Default)]
pub struct Shared {
    pub health: Mutex<Health>,
    /// Jobs sent to the worker and not yet admitted (bounded by the queue size).
    pub pending: AtomicUsize,
    /// Why the engine died, once it has.
    pub failure: Mutex<Option<String>>,
    /// Notified once when the engine dies.
    pub died: tokio::sync::Notify,
}

impl Shared {
    pub fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Records that the engine died: `/health` answers 503 from now on.
    fn mark_dead(&self, why: String) {
        *self.failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
        self.died.notify_one();
    }
}

/// What the handlers need to know about the loaded engine.
pub struct Info {
    pub model: String,
    pub context: usize,
    /// The target's text side, for preparing requests off this thread.
    pub text: Option<Arc<dyn Text>>,
}

struct Waiting {
    job: Job,
    tokenized: Tokenized,
    needs: Needs,
}

struct Running {
    job: Job,
    needs: Needs,
}

struct Worker {
    engine: Engine,
    shared: Arc<Shared>,
    waiting: VecDeque<Waiting>,
    running: HashMap<RequestId, Running>,
    /// What the requests in the batch may take at most, against its room.
    capacity: Capacity,
    stopping: bool,
    health: Health,
}

/// Builds the engine, reports it ready (or why not), and serves jobs until
/// told to stop or every sender is gone.
pub fn run<F>(
    make_engine: F,
    jobs: UnboundedReceiver<Command>,
    shared: Arc<Shared>,
    limits: Limits,
    ready: std::sync::mpsc::Sender<Result<Info, String>>,
) where
    F: FnOnce() -> anyhow::Result<Engine>,
{
    let engine = match make_engine() {
        Ok(e) => e,
        Err(e) => {
            let _ = ready.send(Err(format!("{e:#}")));
            return;
        }
    };
    let context = engine.target.context_size();
    let _ = ready.send(Ok(Info {
        model: engine.target.name().to_string(),
        context,
        text: engine.target.text(),
    }));
    let usable = context - engine.target.scratch_cells();
    let capacity = Capacity::new(usable, engine.config.prefix_cache, limits.max_branches);
    let mut health = Health::default();
    health.totals.engine = engine.config.to_string();
    let mut worker = Worker {
        engine,
        shared: shared.clone(),
        waiting: VecDeque::new(),
        running: HashMap::new(),
        capacity,
        stopping: false,
        health,
    };
    let served = std::panic::catch_unwind(AssertUnwindSafe(|| worker.serve(jobs)));
    if let Err(panic) = served {
        // Marked dead first, so a client that sees its 503 also sees /health's.
        shared.mark_dead(format!("the engine panicked: {}", panic_message(&panic)));
        // Dropping the worker drops every job's sender: their clients get 503.
        drop(worker);
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message")
}

impl Worker {
    fn serve(&mut self, mut jobs: UnboundedReceiver<Command>) {
        let mut closed = false;
        loop {
            self.publish();
            let idle = self.running.is_empty() && self.waiting.is_empty();
            if idle && (closed || self.stopping) {
                return;
            }
            if idle {
                match jobs.blocking_recv() {
                    Some(c) => self.command(c),
                    None => closed = true,
                }
            }
            // Requests that arrived during the last step join now.
            loop {
                match jobs.try_recv() {
                    Ok(c) => self.command(c),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        closed = true;
                        break;
                    }
                }
            }
            self.drop_abandoned();
            self.admit();
            if !self.running.is_empty() {
                self.step();
            }
        }
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Stop => self.stopping = true,
            Command::Submit(job) if self.stopping => {
                self.left_queue();
                let _ = job.events.send(JobEvent::Rejected(ApiError::server(
                    503,
                    "the server is shutting down",
                )));
            }
            Command::Submit(mut job) => match self.check(&job.parsed, job.tokenized.take()) {
                Ok((tokenized, needs)) => {
                    let _ = job.events.send(JobEvent::Accepted);
                    self.waiting.push_back(Waiting {
                        job: *job,
                        tokenized,
                        needs,
                    });
                }
                Err(e) => {
                    self.left_queue();
                    let _ = job.events.send(JobEvent::Rejected(e));
                }
            },
        }
    }

    fn left_queue(&self) {
        self.shared.pending.fetch_sub(1, Ordering::SeqCst);
    }

    /// Prepares a request (unless the HTTP side did) and checks what it may
    /// take against the batch. Returns the tokenized request and its needs.
    fn check(
        &self,
        p: &Parsed,
        tokenized: Option<Tokenized>,
    ) -> Result<(Tokenized, Needs), ApiError> {
        let tokenized = match tokenized {
            Some(t) => t,
            None => {
                let target = self.engine.target.as_ref();
                let context = target.context_size();
                prepare(p, |m| target.chat(m), |t| target.tokenize(t, true), context)?
            }
        };
        let needs = self.engine.needs(&tokenized);
        if needs.cells > self.capacity.cells {
            return Err(ApiError::invalid(
                Some("n"),
                format!(
                    "the request may need {} KV cells (prompts, plus n times max_tokens), \
                     more than the {} this server gives one batch; lower n or max_tokens",
                    needs.cells, self.capacity.cells
                ),
            )
            .with_code("context_length_exceeded"));
        }
        Ok((tokenized, needs))
    }

    fn drop_abandoned(&mut self) {
        let before = self.waiting.len();
        self.waiting.retain(|w| !w.job.events.is_closed());
        for _ in self.waiting.len()..before {
            self.left_queue();
            self.health.cancelled += 1;
        }
        let gone: Vec<RequestId> = self
            .running
            .iter()
            .filter(|(_, r)| r.job.events.is_closed())
            .map(|(&id, _)| id)
            .collect();
        for id in gone {
            let r = self.running.remove(&id).expect("listed");
            self.capacity.give_back(&r.needs);
            self.engine.cancel(id);
            self.health.cancelled += 1;
        }
    }

    /// Admits waiting requests in arrival order while the batch has room
    /// (any request fits an empty batch: `check` bounded it).
    fn admit(&mut self) {
        while let Some(w) = self.waiting.front() {
            if !self.capacity.fits(&w.needs) && !self.running.is_empty() {
                return;
            }
            let w = self.waiting.pop_front().expect("front");
            self.left_queue();
            match self
                .engine
                .admit_tokenized(w.tokenized, w.job.parsed.stream)
            {
                Ok(id) => {
                    self.capacity.take(&w.needs);
                    let running = Running {
                        job: w.job,
                        needs: w.needs,
                    };
                    self.running.insert(id, running);
                }
                Err(e) => {
                    self.health.failed += 1;
                    let _ = w.job.events.send(JobEvent::Failed(api_error(&e)));
                }
            }
        }
    }

    fn step(&mut self) {
        self.health.steps += 1;
        for event in self.engine.step() {
            match event {
                Event::Delta {
                    request,
                    choice,
                    text,
                    finish,
                } => {
                    if let Some(r) = self.running.get(&request) {
                        let _ = r.job.events.send(JobEvent::Delta {
                            choice,
                            text,
                            finish,
                        });
                    }
                }
                Event::Done { request, output } => {
                    if let Some(r) = self.running.remove(&request) {
                        self.capacity.give_back(&r.needs);
                        self.health.completed += 1;
                        self.health.totals.add(&output.stats);
                        // /health counts it before its client hears of it.
                        self.publish();
                        let _ = r.job.events.send(JobEvent::Done(output));
                    }
                }
                Event::Failed { request, error } => {
                    if let Some(r) = self.running.remove(&request) {
                        self.capacity.give_back(&r.needs);
                        self.health.failed += 1;
                        self.publish();
                        let _ = r.job.events.send(JobEvent::Failed(api_error(&error)));
                    }
                }
            }
        }
    }

    fn publish(&mut self) {
        let h = &mut self.health;
        h.in_flight = self.engine.in_flight();
        h.faulted_steps = self.engine.faulted_steps();
        h.live_branches = self.engine.live_branches();
        h.queued = self.shared.pending.load(Ordering::SeqCst);
        h.target_sequences = self.engine.target.live_sequences();
        h.draft_sequences = self.engine.draft.as_ref().and_then(|d| d.live_sequences());
        *self.shared.health.lock().unwrap_or_else(|e| e.into_inner()) = h.clone();
    }
}

/// An engine error as an API error: bad requests are the client's, the rest
/// (a full KV cache, a failed forward) the server's.
fn api_error(e: &DecodeError) -> ApiError {
    match e {
        DecodeError::Invalid(_) | DecodeError::PromptTooLong { .. } => {
            ApiError::invalid(None, e.to_string())
        }
        DecodeError::Model(ModelError::CacheFull(_) | ModelError::OutOfSequences(_)) => {
            ApiError::server(503, format!("{e}; retry later"))
        }
        _ => ApiError::server(500, e.to_string()),
    }
}
