//! `seed serve`: the OpenAI-compatible server on the command line.

use super::load::EngineArgs;
use crate::decode::EngineKind;
use crate::serve::{self, Limits, Options};
use anyhow::{bail, Result};
use clap::Args;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Address to listen on (loopback by default; anything else exposes the models).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Require `Authorization: Bearer KEY` (default: $SEED_API_KEY if set).
    #[arg(long)]
    pub api_key: Option<String>,
    /// Requests that may wait for room in the batch; more get 429.
    #[arg(long, default_value_t = 256)]
    pub max_queue: usize,
    /// Most branches (prompts times samples) in the batch at once, and per request.
    #[arg(long, default_value_t = 64)]
    pub max_batch: usize,
    /// Most samples per prompt (`n`).
    #[arg(long, default_value_t = 64)]
    pub max_n: usize,
    /// Most tokens a request may ask for (the chat default when it gives none).
    #[arg(long, default_value_t = 1024)]
    pub max_tokens: usize,
    /// The model name to report (default: the target's file name).
    #[arg(long)]
    pub model_name: Option<String>,
    /// Seconds a client may take to send a request's head (also how long an
    /// idle keep-alive connection stays open).
    #[arg(long, default_value = "10", value_parser = seconds)]
    pub header_timeout: Duration,
    /// Seconds a client may leave a request's body unsent or a response unread.
    #[arg(long, default_value = "60", value_parser = seconds)]
    pub idle_timeout: Duration,
    /// Most connections open at once; more wait to be accepted.
    #[arg(long, default_value_t = 1024)]
    pub max_connections: usize,
    /// Seconds shutdown waits for requests in flight before cancelling them.
    #[arg(long, default_value = "30", value_parser = seconds)]
    pub drain_timeout: Duration,
    /// Largest request body in bytes (default: 16 per token of context, at least 1 MiB).
    #[arg(long)]
    pub max_body: Option<usize>,
}

/// A duration given in (possibly fractional) seconds.
fn seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(secs)
        .map_err(|_| format!("{text:?} must be a finite number of seconds, 0 or more"))
}

/// Sequences llama.cpp gives one context (see `model::llama`), less its two
/// reserved ones and the prefix cache's most nodes.
const SEQUENCES_FOR_BRANCHES: usize = 256 - 2 - 64;

pub fn run(args: ServeArgs) -> Result<()> {
    let config = args.engine.config(false)?;
    let kind = config.kind;
    // While drafting, every branch holds one draft sequence per leaf of its tree.
    let leaves: usize = match kind {
        EngineKind::Ar => 1,
        _ => config.shape().0.iter().product(),
    };
    if args.max_batch == 0 || args.max_batch * leaves > SEQUENCES_FOR_BRANCHES {
        bail!(
            "--max-batch {}: must be from 1 to {} with this draft shape ({leaves} leaves per branch)",
            args.max_batch,
            SEQUENCES_FOR_BRANCHES / leaves
        );
    }
    let api_key = args
        .api_key
        .clone()
        .or_else(|| std::env::var("SEED_API_KEY").ok())
        .filter(|k| !k.is_empty());
    let options = Options {
        host: args.host.clone(),
        port: args.port,
        api_key,
        max_queue: args.max_queue,
        limits: Limits {
            max_n: args.max_n,
            max_branches: args.max_batch,
            max_tokens: args.max_tokens,
        },
        model_name: args.model_name.clone(),
        header_timeout: args.header_timeout,
        idle_timeout: args.idle_timeout,
        max_connections: args.max_connections,
        drain_timeout: args.drain_timeout,
        max_body: args.max_body,
    };
    let engine = args.engine.clone();
    let server = serve::start(&options, move || engine.build(false))?;
    eprintln!(
        "seed serve: {} ({config}, context {}) on {}{}",
        server.model(),
        server.context(),
        server.base_url(),
        if options.api_key.is_some() {
            " (API key required)"
        } else {
            ""
        }
    );
    if options.api_key.is_none() && !server.addr().ip().is_loopback() {
        eprintln!(
            "warning: listening on {} without an API key: anyone who can reach it can use the \
             model; set --api-key or SEED_API_KEY",
            server.addr()
        );
    }
    server.run_until_signal()
}
