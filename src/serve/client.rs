//! A blocking client for OpenAI-compatible servers, and the search's model
//! ([`Llm`]) over one: `seed solve --engine http://HOST:PORT/v1`.

use crate::decode::{Completion, FinishReason, Output, Request, RunStats};
use crate::model::ChatMessage;
use crate::search::llm::Llm;
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// One completion of a response.
#[derive(Clone, Debug)]
pub struct Choice {
    pub text: String,
    pub finish_reason: FinishReason,
}

/// A non-streamed response.
#[derive(Clone, Debug)]
pub struct Reply {
    /// In index order.
    pub choices: Vec<Choice>,
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
}

pub struct Client {
    base: String,
    api_key: Option<String>,
    agent: ureq::Agent,
}

impl Client {
    /// `base` is the API's base URL, e.g. `http://127.0.0.1:8080/v1`.
    pub fn new(base: &str, api_key: Option<String>, timeout: Duration) -> Result<Self> {
        if !base.starts_with("http://") {
            bail!("server URL {base:?}: expected http://HOST:PORT/v1 (https is not supported)");
        }
        Ok(Client {
            base: base.trim_end_matches('/').to_string(),
            api_key,
            agent: ureq::AgentBuilder::new()
                .timeout_connect(Duration::from_secs(10))
                .timeout(timeout)
                .build(),
        })
    }

    fn request(&self, method: &str, path: &str) -> ureq::Request {
        let r = self.agent.request(method, &format!("{}{path}", self.base));
        match &self.api_key {
            Some(k) => r.set("Authorization", &format!("Bearer {k}")),
            None => r,
        }
    }

    fn call(&self, r: ureq::Request, body: Option<&Value>) -> Result<Value> {
        let url = r.url().to_string();
        let result = match body {
            Some(b) => r.send_json(b),
            None => r.call(),
        };
        match result {
            Ok(resp) => resp
                .into_json()
                .with_context(|| format!("{url}: the answer is not JSON")),
            Err(ureq::Error::Status(code, resp)) => {
                let text = resp.into_string().unwrap_or_default();
                let message = serde_json::from_str::<Value>(&text)
                    .ok()
                    .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
                    .unwrap_or(text);
                bail!("{url}: the server answered {code}: {message}")
            }
            Err(e) => bail!("{url}: {e}"),
        }
    }

    /// The first model the server lists.
    pub fn model(&self) -> Result<String> {
        let v = self.call(self.request("GET", "/models"), None)?;
        v["data"][0]["id"]
            .as_str()
            .map(str::to_string)
            .context("the server lists no model")
    }

    /// POSTs a request body to `path` (`/chat/completions` or `/completions`).
    pub fn complete(&self, path: &str, body: &Value) -> Result<Reply> {
        let chat = path.contains("chat");
        let v = self.call(self.request("POST", path), Some(body))?;
        let bad = || format!("malformed response: {v}");
        let mut choices = Vec::new();
        for c in v["choices"].as_array().with_context(bad)? {
            let text = if chat {
                c["message"]["content"].as_str()
            } else {
                c["text"].as_str()
            };
            let finish_reason = match c["finish_reason"].as_str() {
                Some("length") => FinishReason::Length,
                _ => FinishReason::Stop,
            };
            let index = c["index"].as_u64().with_context(bad)? as usize;
            choices.push((
                index,
                Choice {
                    text: text.unwrap_or_default().to_string(),
                    finish_reason,
                },
            ));
        }
        choices.sort_by_key(|(i, _)| *i);
        let usage = |k: &str| v["usage"][k].as_u64().unwrap_or(0) as usize;
        Ok(Reply {
            choices: choices.into_iter().map(|(_, c)| c).collect(),
            prompt_tokens: usage("prompt_tokens"),
            completion_tokens: usage("completion_tokens"),
        })
    }
}

/// A streamed response, put together.
#[derive(Clone, Debug)]
pub struct Streamed {
    /// Text per choice index.
    pub texts: Vec<String>,
    /// Seconds from sending to the first chunk with text.
    pub first_text_s: Option<f64>,
    pub chunks: usize,
    /// From the final usage chunk (asked for with `include_usage`).
    pub completion_tokens: Option<usize>,
}

impl Client {
    /// POSTs a request with `stream: true` and reads its events to `[DONE]`.
    pub fn stream(&self, path: &str, body: &Value) -> Result<Streamed> {
        use std::io::BufRead;
        let chat = path.contains("chat");
        let mut body = body.clone();
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
        let start = Instant::now();
        let r = self.request("POST", path);
        let url = r.url().to_string();
        let resp = match r.send_json(&body) {
            Ok(resp) => resp,
            Err(ureq::Error::Status(code, resp)) => {
                bail!(
                    "{url}: the server answered {code}: {}",
                    resp.into_string().unwrap_or_default()
                )
            }
            Err(e) => bail!("{url}: {e}"),
        };
        let mut out = Streamed {
            texts: Vec::new(),
            first_text_s: None,
            chunks: 0,
            completion_tokens: None,
        };
        for line in std::io::BufReader::new(resp.into_reader()).lines() {
            let line = line.with_context(|| format!("{url}: reading the stream"))?;
            let Some(data) = line.strip_prefix("data: ") else {
                continue;
            };
            if data == "[DONE]" {
                return Ok(out);
            }
            let v: Value = serde_json::from_str(data)
                .with_context(|| format!("{url}: a chunk is not JSON: {data}"))?;
            if let Some(message) = v["error"]["message"].as_str() {
                bail!("{url}: the stream failed: {message}");
            }
            out.chunks += 1;
            if let Some(t) = v["usage"]["completion_tokens"].as_u64() {
                out.completion_tokens = Some(t as usize);
            }
            for c in v["choices"].as_array().into_iter().flatten() {
                let index = c["index"]
                    .as_u64()
                    .context("a chunk's choice has no index")? as usize;
                let text = if chat {
                    c["delta"]["content"].as_str()
                } else {
                    c["text"].as_str()
                };
                let text = text.unwrap_or_default();
                if out.texts.len() <= index {
                    out.texts.resize(index + 1, String::new());
                }
                if !text.is_empty() && out.first_text_s.is_none() {
                    out.first_text_s = Some(start.elapsed().as_secs_f64());
                }
                out.texts[index] += text;
            }
        }
        bail!("{url}: the stream ended without [DONE]")
    }
}

/// The search's model over an OpenAI-compatible server. Each prompt of a
/// batch request is one chat completion call with `n` samples (the server
/// applies its chat template); the calls run concurrently so that a batching
/// server sees them together.
pub struct RemoteLlm {
    client: Client,
    model: String,
}

impl RemoteLlm {
    /// Connects and asks the server for its model.
    pub fn connect(base: &str, api_key: Option<String>) -> Result<Self> {
        let client = Client::new(base, api_key, Duration::from_secs(3600))?;
        let model = client.model()?;
        Ok(RemoteLlm { client, model })
    }

    pub fn model(&self) -> &str {
        &self.model
    }
}

impl Llm for RemoteLlm {
    /// The message as it is: the server renders it (a longer conversation
    /// goes as one message holding its transcript).
    fn chat(&self, messages: &[ChatMessage]) -> Result<String> {
        crate::search::llm::plain(messages)
    }

    fn generate(&mut self, request: &Request) -> Result<Output> {
        request.validate()?;
        let start = Instant::now();
        let s = &request.sampling;
        let bodies: Vec<Value> = request
            .prompts
            .iter()
            .enumerate()
            .map(|(p, prompt)| {
                let mut body = json!({
                    "model": self.model,
                    "messages": [{"role": "user", "content": prompt}],
                    "n": request.n,
                    "temperature": s.temperature,
                    "top_p": s.top_p,
                    "max_tokens": request.max_tokens,
                    "stop": request.stop,
                    // Another stream per prompt, so equal prompts get other samples.
                    "seed": request.seed.wrapping_add(p as u64) & (i64::MAX as u64),
                });
                if s.top_k > 0 {
                    body["top_k"] = json!(s.top_k);
                }
                body
            })
            .collect();
        let client = &self.client;
        let replies: Vec<Result<Reply>> = std::thread::scope(|scope| {
            let calls: Vec<_> = bodies
                .iter()
                .map(|b| scope.spawn(move || client.complete("/chat/completions", b)))
                .collect();
            calls
                .into_iter()
                .map(|c| {
                    c.join()
                        .unwrap_or_else(|_| bail!("a request thread panicked"))
                })
                .collect()
        });
        let mut stats = RunStats {
            engine: format!("http {}", self.model),
            ..RunStats::default()
        };
        let mut completions = Vec::new();
        for (p, reply) in replies.into_iter().enumerate() {
            let reply = reply?;
            if reply.choices.len() != request.n {
                bail!(
                    "the server sent {} choices for n = {}",
                    reply.choices.len(),
                    request.n
                );
            }
            stats.prompt_tokens += reply.prompt_tokens;
            stats.generated_tokens += reply.completion_tokens;
            // The API counts tokens per response, not per choice: share them out.
            let n = request.n;
            for (s, c) in reply.choices.into_iter().enumerate() {
                let tokens =
                    reply.completion_tokens / n + usize::from(s < reply.completion_tokens % n);
                completions.push(Completion {
                    prompt_index: p,
                    sample_index: s,
                    text: c.text,
                    tokens: vec![0; tokens],
                    logprobs: Vec::new(),
                    finish_reason: c.finish_reason,
                    stats: Default::default(),
                });
            }
        }
        stats.wall_s = start.elapsed().as_secs_f64();
        Ok(Output {
            completions,
            stats,
            trace: Vec::new(),
        })
    }
}
