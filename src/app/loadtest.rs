//! `seed loadtest`: concurrent clients against an OpenAI-compatible server on
//! this machine; throughput and latency percentiles.

use crate::serve::client::Client;
use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct LoadtestArgs {
    /// The server's API base URL (loopback only).
    #[arg(long, default_value = "http://127.0.0.1:8080/v1")]
    pub url: String,
    /// Concurrent clients, each sending one request after another.
    #[arg(long, default_value_t = 32)]
    pub clients: usize,
    /// Requests in all.
    #[arg(long, default_value_t = 128)]
    pub requests: usize,
    #[arg(long, default_value_t = 64)]
    pub max_tokens: usize,
    #[arg(long, default_value_t = 1)]
    pub n: usize,
    #[arg(long, default_value_t = 0.7)]
    pub temperature: f32,
    /// The user message (request i gets seed i).
    #[arg(
        long,
        default_value = "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?"
    )]
    pub prompt: String,
    /// Stream the responses and also report the time to the first text.
    #[arg(long)]
    pub stream: bool,
    /// Send no new request after this many seconds.
    #[arg(long, default_value_t = 600)]
    pub duration: u64,
    /// API key (default: $SEED_API_KEY).
    #[arg(long)]
    pub api_key: Option<String>,
}

/// Whether a URL's host is this machine.
fn is_loopback(url: &str) -> bool {
    let rest = url.strip_prefix("http://").unwrap_or("");
    let host_port = rest.split('/').next().unwrap_or("");
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host_port.split(':').next().unwrap_or(""),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

struct Sample {
    latency_s: f64,
    first_text_s: Option<f64>,
    tokens: usize,
}

/// The p-th percentile (nearest rank) of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn run(args: LoadtestArgs) -> Result<()> {
    if !is_loopback(&args.url) {
        bail!(
            "--url {}: the load test only runs against this machine (http://127.0.0.1:PORT/v1)",
            args.url
        );
    }
    if args.clients == 0 || args.requests == 0 {
        bail!("--clients and --requests must be at least 1");
    }
    let api_key = args
        .api_key
        .clone()
        .or_else(|| std::env::var("SEED_API_KEY").ok())
        .filter(|k| !k.is_empty());
    let deadline = Duration::from_secs(args.duration);
    let client = Client::new(&args.url, api_key, deadline + Duration::from_secs(60))?;
    let model = client.model().context("asking the server for its model")?;
    let start = Instant::now();
    let (samples, errors) = send_all(&args, &client, &model, start, deadline);
    report(
        &args,
        &model,
        &samples,
        errors.len(),
        start.elapsed().as_secs_f64(),
    );
    if let Some(e) = errors.first() {
        bail!("{} requests failed; the first: {e}", errors.len());
    }
    Ok(())
}

/// Runs the clients until every request is sent or the deadline passes;
/// returns the answered requests and the errors of the others.
fn send_all(
    args: &LoadtestArgs,
    client: &Client,
    model: &str,
    start: Instant,
    deadline: Duration,
) -> (Vec<Sample>, Vec<String>) {
    let next = AtomicUsize::new(0);
    let samples = Mutex::new(Vec::new());
    let errors = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..args.clients.min(args.requests) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= args.requests || start.elapsed() > deadline {
                    return;
                }
                match send_one(args, client, model, i) {
                    Ok(sample) => samples.lock().unwrap().push(sample),
                    Err(e) => errors.lock().unwrap().push(format!("{e:#}")),
                }
            });
        }
    });
    (samples.into_inner().unwrap(), errors.into_inner().unwrap())
}

/// Request `i` (with seed `i`), streamed or not.
fn send_one(args: &LoadtestArgs, client: &Client, model: &str, i: usize) -> Result<Sample> {
    let body = json!({
        "model": model,
        "messages": [{"role": "user", "content": args.prompt}],
        "n": args.n,
        "max_tokens": args.max_tokens,
        "temperature": args.temperature,
        "seed": i,
    });
    let t0 = Instant::now();
    let (tokens, first_text_s) = if args.stream {
        let s = client.stream("/chat/completions", &body)?;
        (s.completion_tokens.unwrap_or(0), s.first_text_s)
    } else {
        let r = client.complete("/chat/completions", &body)?;
        (r.completion_tokens, None)
    };
    Ok(Sample {
        latency_s: t0.elapsed().as_secs_f64(),
        first_text_s,
        tokens,
    })
}

/// Throughput and latency percentiles on stdout.
fn report(args: &LoadtestArgs, model: &str, samples: &[Sample], failed: usize, wall: f64) {
    let tokens: usize = samples.iter().map(|s| s.tokens).sum();
    let mut latency: Vec<f64> = samples.iter().map(|s| s.latency_s).collect();
    latency.sort_by(f64::total_cmp);
    println!(
        "{model}: {} requests ok, {} failed, {} clients, {:.1} s",
        samples.len(),
        failed,
        args.clients,
        wall
    );
    println!(
        "throughput: {:.2} requests/s, {:.1} completion tokens/s ({tokens} tokens)",
        samples.len() as f64 / wall,
        tokens as f64 / wall
    );
    println!(
        "latency s: p50 {:.2}, p90 {:.2}, p99 {:.2}, max {:.2}",
        percentile(&latency, 50.0),
        percentile(&latency, 90.0),
        percentile(&latency, 99.0),
        latency.last().copied().unwrap_or(f64::NAN)
    );
    if args.stream {
        let mut first: Vec<f64> = samples.iter().filter_map(|s| s.first_text_s).collect();
        first.sort_by(f64::total_cmp);
        println!(
            "time to first text s: p50 {:.2}, p90 {:.2}, p99 {:.2}",
            percentile(&first, 50.0),
            percentile(&first, 90.0),
            percentile(&first, 99.0)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::{is_loopback, percentile};

    #[test]
    fn loopback_only() {
        assert!(is_loopback("http://127.0.0.1:8080/v1"));
        assert!(is_loopback("http://localhost:1/v1"));
        assert!(is_loopback("http://[::1]:8080/v1"));
        assert!(!is_loopback("http://10.0.0.2:8080/v1"));
        assert!(!is_loopback("http://example.com/v1"));
        assert!(!is_loopback("https://127.0.0.1/v1"));
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 5.0);
        assert_eq!(percentile(&v, 90.0), 9.0);
        assert_eq!(percentile(&v, 99.0), 10.0);
    }
}
