//! An OpenAI-compatible HTTP server over one engine, and a client for such
//! servers.
//!
//! Every request in flight, and each of its samples, is a branch of the
//! engine's one continuous batch (see `decode::batch`): requests join at the
//! next round and leave when they finish. The engine runs on its own thread
//! ([`worker`]); the HTTP side ([`http`]) runs on a small tokio runtime.

pub mod client;
mod http;
mod listen;
pub mod openai;
mod prepare;
mod worker;

pub use openai::Limits;
pub use worker::Health;

use crate::decode::Engine;
use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

/// How a server listens and what it accepts.
#[derive(Clone, Debug)]
pub struct Options {
    pub host: String,
    /// 0 picks a free port.
    pub port: u16,
    /// Required as `Authorization: Bearer KEY` when set.
    pub api_key: Option<String>,
    /// Most requests waiting for room in the batch; more get 429.
    pub max_queue: usize,
    pub limits: Limits,
    /// The model name reported (default: the target's file name).
    pub model_name: Option<String>,
    /// How long a client may take to send a request's head, counted from
    /// when the connection opens or its previous response ends (so also how
    /// long an idle keep-alive connection stays open).
    pub header_timeout: Duration,
    /// How long a client may leave the server waiting mid-request (a body
    /// not sent, a response not read) before its connection is closed.
    pub idle_timeout: Duration,
    /// Most connections open at once; more wait to be accepted.
    pub max_connections: usize,
    /// How long shutdown waits for the requests in flight before it cancels
    /// them (they answer 503).
    pub drain_timeout: Duration,
    /// Largest request body in bytes (default: [`body_limit`] of the context).
    pub max_body: Option<usize>,
}

/// Bytes of request body allowed per token of context: a prompt that fills
/// the context, with room for JSON escapes.
const BODY_BYTES_PER_TOKEN: usize = 16;
const MIN_BODY: usize = 1 << 20;

/// The default body limit for a model with `context` tokens.
pub fn body_limit(context: usize) -> usize {
    context.saturating_mul(BODY_BYTES_PER_TOKEN).max(MIN_BODY)
}

impl Default for Options {
    fn default() -> Self {
        Options {
            host: "127.0.0.1".into(),
            port: 8080,
            api_key: None,
            max_queue: 256,
            limits: Limits {
                max_n: 64,
                max_branches: 64,
                max_tokens: 1024,
            },
            model_name: None,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1024,
            drain_timeout: Duration::from_secs(30),
            max_body: None,
        }
    }
}

impl Options {
    fn check(&self) -> Result<()> {
        if self.limits.max_n == 0 || self.limits.max_branches == 0 {
            anyhow::bail!("the most samples and branches per request must be at least 1");
        }
        for (name, t) in [
            ("header timeout", self.header_timeout),
            ("idle timeout", self.idle_timeout),
        ] {
            if t.is_zero() {
                anyhow::bail!("the {name} must be more than 0 seconds");
            }
        }
        if !(1..=tokio::sync::Semaphore::MAX_PERMITS).contains(&self.max_connections) {
            anyhow::bail!(
                "the most connections must be at least 1, got {}",
                self.max_connections
            );
        }
        if self.max_body == Some(0) {
            anyhow::bail!("the largest request body must be at least 1 byte");
        }
        Ok(())
    }

    fn connections(&self) -> listen::Connections {
        listen::Connections {
            header_timeout: self.header_timeout,
            idle_timeout: self.idle_timeout,
            max_connections: self.max_connections,
            drain_timeout: self.drain_timeout,
        }
    }
}

/// A running server.
pub struct Server {
    addr: SocketAddr,
    model: String,
    context: usize,
    drain_timeout: Duration,
    runtime: tokio::runtime::Runtime,
    stop: Option<oneshot::Sender<()>>,
    serving: tokio::task::JoinHandle<()>,
    jobs: mpsc::UnboundedSender<worker::Command>,
    worker: std::thread::JoinHandle<()>,
    shared: Arc<worker::Shared>,
}

/// Binds the address, builds the engine on the worker thread with
/// `make_engine` (models need not be `Send`) and starts serving.
pub fn start<F>(options: &Options, make_engine: F) -> Result<Server>
where
    F: FnOnce() -> Result<Engine> + Send + 'static,
{
    options.check()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("seed-http")
        .enable_all()
        .build()
        .context("starting the HTTP runtime")?;
    let address = (options.host.as_str(), options.port);
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(address))
        .with_context(|| format!("cannot listen on {}:{}", options.host, options.port))?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(worker::Shared::default());
    let (jobs, jobs_rx) = mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let worker = {
        let shared = shared.clone();
        let limits = options.limits.clone();
        std::thread::Builder::new()
            .name("seed-engine".into())
            .spawn(move || worker::run(make_engine, jobs_rx, shared, limits, ready_tx))?
    };
    let info = match ready_rx.recv() {
        Ok(Ok(info)) => info,
        Ok(Err(e)) => anyhow::bail!("{e}"),
        Err(_) => anyhow::bail!("the engine thread stopped while loading"),
    };
    let model = options.model_name.clone().unwrap_or(info.model);
    let (cancel, cancelled) = watch::channel(false);
    let state = Arc::new(http::AppState {
        jobs: jobs.clone(),
        shared: shared.clone(),
        api_key: options.api_key.clone().filter(|k| !k.is_empty()),
        limits: options.limits.clone(),
        max_queue: options.max_queue,
        max_body: options.max_body.unwrap_or_else(|| body_limit(info.context)),
        idle_timeout: options.idle_timeout,
        cancelled,
        model: model.clone(),
        created: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        text: info.text,
        context: info.context,
    });
    let (stop, stopped) = oneshot::channel::<()>();
    let app = http::router(state);
    let serving = runtime.spawn(listen::serve(
        listener,
        app,
        options.connections(),
        stopped,
        cancel,
    ));
    Ok(Server {
        addr,
        model,
        context: info.context,
        drain_timeout: options.drain_timeout,
        runtime,
        stop: Some(stop),
        serving,
        jobs,
        worker,
        shared,
    })
}

impl Server {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API's base URL, e.g. `http://127.0.0.1:8080/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    pub fn context(&self) -> usize {
        self.context
    }

    /// Stops taking connections and requests (new ones get 503), lets the
    /// requests in flight finish for up to the drain timeout, cancels those
    /// still running then, and stops the engine.
    pub fn shutdown(mut self) -> Result<()> {
        let _ = self.jobs.send(worker::Command::Stop);
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let served = self.runtime.block_on(self.serving);
        drop(self.jobs);
        self.worker
            .join()
            .map_err(|_| anyhow::anyhow!("the engine thread panicked"))?;
        served.context("the HTTP server task failed")?;
        Ok(())
    }

    /// Why the engine died, once it has (`/health` then answers 503).
    pub fn engine_failure(&self) -> Option<String> {
        self.shared.failure()
    }

    /// Serves until ctrl-c or SIGTERM, then shuts down as [`Server::shutdown`].
    /// If the engine dies first, shuts down and fails with the reason, so
    /// that a supervisor restarts the server.
    pub fn run_until_signal(self) -> Result<()> {
        let shared = self.shared.clone();
        self.runtime.block_on(async {
            let ctrl_c = tokio::signal::ctrl_c();
            let died = shared.died.notified();
            #[cfg(unix)]
            {
                use tokio::signal::unix::{signal, SignalKind};
                let mut term = signal(SignalKind::terminate())?;
                tokio::select! {
                    r = ctrl_c => r?,
                    _ = term.recv() => {}
                    _ = died => {}
                }
            }
            #[cfg(not(unix))]
            tokio::select! {
                r = ctrl_c => r?,
                _ = died => {}
            }
            anyhow::Ok(())
        })?;
        if let Some(why) = shared.failure() {
            eprintln!("shutting down: {why}");
            self.shutdown()?;
            anyhow::bail!("{why}");
        }
        eprintln!(
            "shutting down: finishing the requests in flight, cancelling those left after {}s \
             (ctrl-c again to quit now)",
            self.drain_timeout.as_secs_f64()
        );
        self.runtime.spawn(async {
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        });
        self.shutdown()
    }
}
