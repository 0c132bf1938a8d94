//! An OpenAI-compatible HTTP server over one engine, and a client for such
//! servers.
//!
//! Every request in flight, and each of its samples, is a branch of the
//! engine's one continuous batch (see `decode::batch`): requests join at the
//! next round and leave when they finish. The engine runs on its own thread
//! ([`worker`]); the HTTP side ([`http`]) runs on a small tokio runtime.

pub mod client;
mod http;
pub mod openai;
mod worker;

pub use openai::Limits;
pub use worker::Health;

use crate::decode::Engine;
use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

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
        }
    }
}

/// A running server.
pub struct Server {
    addr: SocketAddr,
    model: String,
    context: usize,
    runtime: tokio::runtime::Runtime,
    stop: Option<oneshot::Sender<()>>,
    serving: tokio::task::JoinHandle<std::io::Result<()>>,
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
    if options.limits.max_n == 0 || options.limits.max_branches == 0 {
        anyhow::bail!("the most samples and branches per request must be at least 1");
    }
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
    let state = Arc::new(http::AppState {
        jobs: jobs.clone(),
        shared: shared.clone(),
        api_key: options.api_key.clone().filter(|k| !k.is_empty()),
        limits: options.limits.clone(),
        max_queue: options.max_queue,
        model: model.clone(),
        created: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    });
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = runtime.spawn(async move {
        axum::serve(listener, http::router(state))
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    Ok(Server {
        addr,
        model,
        context: info.context,
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

    /// Stops taking connections, lets the requests in flight finish, then
    /// stops the engine.
    pub fn shutdown(mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let served = self.runtime.block_on(self.serving);
        let _ = self.jobs.send(worker::Command::Stop);
        drop(self.jobs);
        self.worker
            .join()
            .map_err(|_| anyhow::anyhow!("the engine thread panicked"))?;
        served.context("the HTTP server task failed")??;
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
        eprintln!("shutting down: finishing the requests in flight (ctrl-c again to quit now)");
        self.runtime.spawn(async {
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        });
        self.shutdown()
    }
}
