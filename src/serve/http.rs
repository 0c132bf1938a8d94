//! HTTP handlers: authentication, the bounded queue, and turning worker
//! events into OpenAI responses or server-sent event streams.

use super::openai::{self, ApiError, Endpoint, Limits, Meta, ModelList, Parsed, Usage};
use super::prepare::prepare;
use super::worker::{Command, Health, Job, JobEvent, Shared};
use crate::decode::Tokenized;
use crate::model::Text;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use subtle::ConstantTimeEq;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::sync::watch;

pub struct AppState {
    pub jobs: UnboundedSender<Command>,
    pub shared: Arc<Shared>,
    pub api_key: Option<String>,
    pub limits: Limits,
    /// Most requests waiting for the batch before new ones get 429.
    pub max_queue: usize,
    /// Largest request body in bytes; larger ones get 413.
    pub max_body: usize,
    /// How long a request's body may take to arrive.
    pub idle_timeout: Duration,
    /// Set when shutdown's drain deadline has passed: requests answer 503.
    pub cancelled: watch::Receiver<bool>,
    pub model: String,
    pub created: u64,
    /// The target's tokenizer and chat template, where shareable.
    pub text: Option<Arc<dyn Text>>,
    /// The target's context, in tokens.
    pub context: usize,
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat).fallback(only("POST")))
        .route("/v1/completions", post(completions).fallback(only("POST")))
        .route("/v1/models", get(models).fallback(only("GET")))
        .route("/health", get(health).fallback(only("GET")))
        .fallback(not_found)
        .with_state(state)
}

/// Compact JSON of a response body; none of ours can fail to serialize.
fn to_json(body: &impl Serialize) -> String {
    serde_json::to_string(body).expect("response bodies serialize")
}

fn json_response(status: u16, body: &impl Serialize) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        to_json(body),
    )
        .into_response()
}

fn error_response(e: ApiError) -> Response {
    let mut response = json_response(e.status, &e.body());
    if e.status == 429 {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(key) = &state.api_key else {
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    // Compared in constant time, so timing tells nothing about the key.
    let matches = given.is_some_and(|g| bool::from(g.trim().as_bytes().ct_eq(key.as_bytes())));
    if matches {
        return Ok(());
    }
    Err(ApiError {
        status: 401,
        message: match given {
            None => "missing API key: send Authorization: Bearer KEY".into(),
            Some(_) => "incorrect API key provided".into(),
        },
        kind: "invalid_request_error",
        param: None,
        code: Some("invalid_api_key"),
    })
}

async fn not_found() -> Response {
    error_response(ApiError {
        status: 404,
        message: "unknown endpoint; this server has POST /v1/chat/completions, \
                  POST /v1/completions, GET /v1/models and GET /health"
            .into(),
        kind: "invalid_request_error",
        param: None,
        code: Some("unknown_url"),
    })
}

/// The answer to a known endpoint called with another method.
fn only(
    allowed: &'static str,
) -> impl Fn(Method) -> std::future::Ready<Response> + Clone + Send + Sync + 'static {
    move |method| {
        std::future::ready(error_response(ApiError {
            status: 405,
            message: format!("{method} is not allowed here; this endpoint takes {allowed}"),
            kind: "invalid_request_error",
            param: None,
            code: Some("method_not_allowed"),
        }))
    }
}

/// Only JSON is read: a browser page can send `text/plain` or form posts to
/// any server without asking, but not `application/json`.
fn check_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let given = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let essence = given.as_deref().and_then(|t| t.split(';').next());
    if essence.is_some_and(|e| e.trim().eq_ignore_ascii_case("application/json")) {
        return Ok(());
    }
    Err(ApiError {
        status: 415,
        message: format!(
            "the request body must be JSON with Content-Type: application/json, got {}",
            given.map_or("no Content-Type".into(), |t| format!("{t:?}"))
        ),
        kind: "invalid_request_error",
        param: None,
        code: Some("unsupported_media_type"),
    })
}

/// The whole body, at most `max_body` bytes, arriving within the idle timeout.
async fn read_body(state: &AppState, body: Body) -> Result<Bytes, ApiError> {
    let limit = state.max_body;
    let read = tokio::time::timeout(state.idle_timeout, axum::body::to_bytes(body, limit)).await;
    let too_large = |e: &axum::Error| {
        std::error::Error::source(e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
    };
    match read {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) if too_large(&e) => Err(ApiError {
            status: 413,
            message: format!("the request body is larger than this server's {limit} bytes"),
            kind: "invalid_request_error",
            param: None,
            code: Some("request_too_large"),
        }),
        Ok(Err(e)) => Err(ApiError::invalid(
            None,
            format!("cannot read the request body: {e}"),
        )),
        Err(_) => Err(ApiError {
            status: 408,
            message: format!(
                "the request body did not arrive within {}s",
                state.idle_timeout.as_secs_f64()
            ),
            kind: "invalid_request_error",
            param: None,
            code: Some("request_timeout"),
        }),
    }
}

/// `GET /health`: the worker's counters, with the model's name.
#[derive(Serialize)]
struct HealthBody<'a> {
    status: &'static str,
    /// Why the engine stopped, when it has.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    model: &'a str,
    #[serde(flatten)]
    health: Health,
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    let health = state
        .shared
        .health
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let failure = state.shared.failure();
    let body = HealthBody {
        status: if failure.is_some() { "error" } else { "ok" },
        reason: failure.as_deref(),
        model: &state.model,
        health,
    };
    json_response(if failure.is_some() { 503 } else { 200 }, &body)
}

async fn models(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Err(e) = authorize(&state, &headers) {
        return error_response(e);
    }
    json_response(200, &ModelList::one(&state.model, state.created))
}

async fn completions(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(state, headers, body, Endpoint::Completions).await
}

async fn chat(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    handle(state, headers, body, Endpoint::Chat).await
}

fn engine_gone(shared: &Shared) -> ApiError {
    let why = shared.failure();
    ApiError::server(
        503,
        format!(
            "the engine has stopped: {}",
            why.as_deref().unwrap_or("shutting down")
        ),
    )
}

fn cancelled_by_shutdown() -> ApiError {
    ApiError::server(
        503,
        "the server is shutting down; the request was cancelled",
    )
}

/// The job's next event; a failure once shutdown's drain deadline passes.
async fn next_event(
    rx: &mut UnboundedReceiver<JobEvent>,
    cancelled: &mut watch::Receiver<bool>,
) -> Option<JobEvent> {
    tokio::select! {
        event = rx.recv() => event,
        _ = cancelled.wait_for(|&c| c) => Some(JobEvent::Failed(cancelled_by_shutdown())),
    }
}

/// Renders and tokenizes a request on a blocking thread, so that a huge
/// prompt never stalls the engine's streams (`None`: a model without a
/// shareable text side, prepared by the worker).
async fn prepare_off_engine(
    state: &AppState,
    parsed: Parsed,
) -> Result<(Parsed, Option<Tokenized>), ApiError> {
    let Some(text) = state.text.clone() else {
        return Ok((parsed, None));
    };
    let context = state.context;
    let (parsed, prepared) = tokio::task::spawn_blocking(move || {
        let tokenize = |t: &str| text.tokenize(t, true);
        let prepared = prepare(&parsed, |m| text.chat(m), tokenize, context);
        (parsed, prepared)
    })
    .await
    .map_err(|e| ApiError::server(500, format!("preparing the request failed: {e}")))?;
    Ok((parsed, Some(prepared?)))
}

async fn handle(
    state: Arc<AppState>,
    headers: HeaderMap,
    body: Body,
    endpoint: Endpoint,
) -> Response {
    let checked = match authorize(&state, &headers).and_then(|()| check_json(&headers)) {
        Ok(()) => read_body(&state, body).await,
        Err(e) => Err(e),
    };
    let parsed = match checked.and_then(|body| openai::parse(&body, endpoint, &state.limits)) {
        Ok(p) => p,
        Err(e) => return error_response(e),
    };
    let (parsed, tokenized) = match prepare_off_engine(&state, parsed).await {
        Ok(prepared) => prepared,
        Err(e) => return error_response(e),
    };
    let taken = state
        .shared
        .pending
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |p| {
            (p < state.max_queue).then_some(p + 1)
        });
    if taken.is_err() {
        return error_response(ApiError {
            status: 429,
            message: format!(
                "the server's queue is full ({} requests waiting); retry later",
                state.max_queue
            ),
            kind: "requests",
            param: None,
            code: Some("rate_limit_exceeded"),
        });
    }
    let (stream, include_usage) = (parsed.stream, parsed.include_usage);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let job = Job {
        parsed,
        tokenized,
        events: tx,
    };
    if state.jobs.send(Command::Submit(Box::new(job))).is_err() {
        state.shared.pending.fetch_sub(1, Ordering::SeqCst);
        return error_response(engine_gone(&state.shared));
    }
    let mut cancelled = state.cancelled.clone();
    // The worker checks what needs the model before anything is answered.
    match next_event(&mut rx, &mut cancelled).await {
        Some(JobEvent::Accepted) => {}
        Some(JobEvent::Rejected(e)) | Some(JobEvent::Failed(e)) => return error_response(e),
        _ => return error_response(engine_gone(&state.shared)),
    }
    let meta = Meta::new(endpoint, &state.model);
    if stream {
        return stream_response(meta, rx, cancelled, include_usage, state.shared.clone())
            .into_response();
    }
    // Dropping `rx` (the client left, or shutdown gave up) cancels the
    // request in the worker.
    loop {
        match next_event(&mut rx, &mut cancelled).await {
            Some(JobEvent::Done(output)) => return json_response(200, &meta.response(&output)),
            Some(JobEvent::Failed(e)) | Some(JobEvent::Rejected(e)) => return error_response(e),
            Some(_) => {}
            None => return error_response(engine_gone(&state.shared)),
        }
    }
}

struct StreamState {
    rx: UnboundedReceiver<JobEvent>,
    cancelled: watch::Receiver<bool>,
    meta: Meta,
    include_usage: bool,
    /// Choices that have had their first chunk (chat sends the role first).
    started: Vec<bool>,
    finished: bool,
    shared: Arc<Shared>,
}

/// Server-sent events in OpenAI's chunk format, ending with `[DONE]`.
fn stream_response(
    meta: Meta,
    rx: UnboundedReceiver<JobEvent>,
    cancelled: watch::Receiver<bool>,
    include_usage: bool,
    shared: Arc<Shared>,
) -> Sse<impl futures_util::Stream<Item = Result<SseEvent, Infallible>>> {
    let state = StreamState {
        rx,
        cancelled,
        meta,
        include_usage,
        started: Vec::new(),
        finished: false,
        shared,
    };
    let events = futures_util::stream::unfold(state, |mut s| async move {
        if s.finished {
            return None;
        }
        loop {
            let data = match next_event(&mut s.rx, &mut s.cancelled).await {
                Some(JobEvent::Delta {
                    choice,
                    text,
                    finish,
                }) => {
                    if s.started.len() <= choice {
                        s.started.resize(choice + 1, false);
                    }
                    let first = !std::mem::replace(&mut s.started[choice], true);
                    to_json(&s.meta.chunk(choice, &text, first, finish, s.include_usage))
                }
                Some(JobEvent::Done(output)) => {
                    s.finished = true;
                    let events = if s.include_usage {
                        let usage = s.meta.usage_chunk(Usage::of(&output));
                        vec![to_json(&usage), "[DONE]".to_string()]
                    } else {
                        vec!["[DONE]".to_string()]
                    };
                    return Some((events, s));
                }
                Some(JobEvent::Failed(e)) | Some(JobEvent::Rejected(e)) => {
                    s.finished = true;
                    // Dropping the events now cancels the job at once.
                    s.rx.close();
                    return Some((vec![to_json(&e.body()), "[DONE]".to_string()], s));
                }
                Some(JobEvent::Accepted) => continue,
                None => {
                    s.finished = true;
                    let e = to_json(&engine_gone(&s.shared).body());
                    return Some((vec![e, "[DONE]".to_string()], s));
                }
            };
            return Some((vec![data], s));
        }
    });
    use futures_util::StreamExt;
    let flat = events.flat_map(|batch| {
        futures_util::stream::iter(
            batch
                .into_iter()
                .map(|data| Ok(SseEvent::default().data(data))),
        )
    });
    Sse::new(flat).keep_alive(KeepAlive::default())
}
