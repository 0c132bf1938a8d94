//! OpenAI's request and response formats: parsing and checking requests,
//! building responses, stream chunks and error objects.
//!
//! Requests are read from `serde_json::Value` by hand so that unknown fields
//! are ignored and every mistake gets a message naming the field.

use crate::decode::{FinishReason, Output, Sampling};
use crate::model::ChatMessage;
use serde::Serialize;
use serde_json::{json, Value};

/// An error answered in OpenAI's format.
#[derive(Clone, Debug)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
    pub kind: &'static str,
    pub param: Option<&'static str>,
    pub code: Option<&'static str>,
}

impl ApiError {
    pub fn invalid(param: Option<&'static str>, message: impl Into<String>) -> Self {
        ApiError {
            status: 400,
            message: message.into(),
            kind: "invalid_request_error",
            param,
            code: None,
        }
    }

    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    pub fn server(status: u16, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            kind: "server_error",
            param: None,
            code: None,
        }
    }

    pub fn body(&self) -> Value {
        json!({"error": {
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        }})
    }
}

/// The server's limits on requests.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Most samples per prompt.
    pub max_n: usize,
    /// Most prompts times samples in one request.
    pub max_branches: usize,
    /// Most tokens a request may ask for; also the chat default.
    pub max_tokens: usize,
}

/// What a request asks for: prompts as text, or one conversation.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    Prompts(Vec<String>),
    Chat(Vec<ChatMessage>),
}

/// A parsed, checked request of either endpoint.
#[derive(Clone, Debug)]
pub struct Parsed {
    pub input: Input,
    pub n: usize,
    pub sampling: Sampling,
    pub max_tokens: usize,
    pub stop: Vec<String>,
    /// `None`: a fresh random seed.
    pub seed: Option<u64>,
    pub stream: bool,
    pub include_usage: bool,
}

/// Which endpoint a request came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Completions,
    Chat,
}

fn number(v: &Value, param: &'static str) -> Result<Option<f64>, ApiError> {
    match v.get(param) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(x)) => Ok(x.as_f64()),
        Some(other) => Err(ApiError::invalid(
            Some(param),
            format!("{param} must be a number, got {other}"),
        )),
    }
}

fn integer(v: &Value, param: &'static str) -> Result<Option<i64>, ApiError> {
    match v.get(param) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(x)) if x.is_i64() => Ok(x.as_i64()),
        Some(Value::Number(x)) if x.is_u64() => Ok(Some(i64::MAX)),
        Some(other) => Err(ApiError::invalid(
            Some(param),
            format!("{param} must be an integer, got {other}"),
        )),
    }
}

fn flag(v: &Value, param: &'static str) -> Result<bool, ApiError> {
    match v.get(param) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(ApiError::invalid(
            Some(param),
            format!("{param} must be true or false, got {other}"),
        )),
    }
}

/// A string or a list of strings.
fn strings(v: &Value, param: &'static str) -> Result<Option<Vec<String>>, ApiError> {
    let bad = || {
        ApiError::invalid(
            Some(param),
            format!("{param} must be a string or a list of strings"),
        )
    };
    match v.get(param) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(vec![s.clone()])),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string).ok_or_else(bad))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(bad()),
    }
}

/// Text of a message's content: a string or a list of text parts.
fn content(v: &Value) -> Result<String, ApiError> {
    let bad = |what: &str| ApiError::invalid(Some("messages"), what.to_string());
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Null => Ok(String::new()),
        Value::Array(parts) => {
            let mut text = String::new();
            for p in parts {
                match (p.get("type").and_then(Value::as_str), p.get("text")) {
                    (Some("text"), Some(Value::String(t))) => text += t,
                    _ => return Err(bad("only text content parts are supported")),
                }
            }
            Ok(text)
        }
        _ => Err(bad(
            "a message's content must be a string or a list of text parts",
        )),
    }
}

/// Fields we do not implement: refused when they ask for something, so that
/// a client never silently gets other output than it asked for.
fn refuse_unsupported(v: &Value) -> Result<(), ApiError> {
    let nonzero = |p: &str| v.get(p).and_then(Value::as_f64).is_some_and(|x| x != 0.0);
    for p in ["presence_penalty", "frequency_penalty"] {
        if nonzero(p) {
            return Err(ApiError::invalid(None, format!("{p} is not supported")));
        }
    }
    let truthy = |p: &str| match v.get(p) {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(_) => true,
    };
    for p in [
        "logprobs",
        "top_logprobs",
        "echo",
        "logit_bias",
        "tools",
        "functions",
    ] {
        if truthy(p) {
            return Err(ApiError::invalid(None, format!("{p} is not supported")));
        }
    }
    Ok(())
}

/// Parses and checks a request body.
pub fn parse(body: &[u8], endpoint: Endpoint, limits: &Limits) -> Result<Parsed, ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid(None, format!("the request body is not valid JSON: {e}")))?;
    if !v.is_object() {
        return Err(ApiError::invalid(
            None,
            "the request body must be a JSON object",
        ));
    }
    refuse_unsupported(&v)?;
    let input = match endpoint {
        Endpoint::Completions => {
            let prompts = strings(&v, "prompt").map_err(|_| {
                ApiError::invalid(
                    Some("prompt"),
                    "prompt must be a string or a list of strings (token-id prompts are not supported)",
                )
            })?;
            let prompts =
                prompts.ok_or_else(|| ApiError::invalid(Some("prompt"), "prompt is required"))?;
            if prompts.is_empty() {
                return Err(ApiError::invalid(Some("prompt"), "prompt is an empty list"));
            }
            Input::Prompts(prompts)
        }
        Endpoint::Chat => {
            let messages = match v.get("messages") {
                Some(Value::Array(m)) if !m.is_empty() => m,
                Some(Value::Array(_)) => {
                    return Err(ApiError::invalid(Some("messages"), "messages is empty"))
                }
                _ => {
                    return Err(ApiError::invalid(
                        Some("messages"),
                        "messages is required: a list of {role, content} objects",
                    ))
                }
            };
            let messages = messages
                .iter()
                .map(|m| {
                    let role = m.get("role").and_then(Value::as_str).ok_or_else(|| {
                        ApiError::invalid(Some("messages"), "every message needs a role")
                    })?;
                    Ok(ChatMessage {
                        role: role.to_string(),
                        content: content(m.get("content").unwrap_or(&Value::Null))?,
                    })
                })
                .collect::<Result<Vec<_>, ApiError>>()?;
            Input::Chat(messages)
        }
    };
    let prompts = match &input {
        Input::Prompts(p) => p.len(),
        Input::Chat(_) => 1,
    };
    let n = integer(&v, "n")?.unwrap_or(1);
    if n < 1 || n as u64 > limits.max_n as u64 {
        return Err(ApiError::invalid(
            Some("n"),
            format!("n must be from 1 to {}, got {n}", limits.max_n),
        ));
    }
    let n = n as usize;
    if prompts * n > limits.max_branches {
        return Err(ApiError::invalid(
            Some("n"),
            format!(
                "{prompts} prompts times n = {n} is more than the server's {} completions per request",
                limits.max_branches
            ),
        ));
    }
    // OpenAI's defaults: 16 tokens for completions; chat runs to the server's limit.
    let (param, max_tokens) = match integer(&v, "max_completion_tokens")? {
        Some(m) => ("max_completion_tokens", Some(m)),
        None => ("max_tokens", integer(&v, "max_tokens")?),
    };
    let max_tokens = match (max_tokens, endpoint) {
        (Some(m), _) if m < 0 || m as u64 > limits.max_tokens as u64 => {
            return Err(ApiError::invalid(
                Some(param),
                format!("{param} must be from 0 to {}, got {m}", limits.max_tokens),
            ))
        }
        (Some(m), _) => m as usize,
        (None, Endpoint::Completions) => 16.min(limits.max_tokens),
        (None, Endpoint::Chat) => limits.max_tokens,
    };
    let temperature = number(&v, "temperature")?.unwrap_or(1.0);
    if !(0.0..=2.0).contains(&temperature) {
        return Err(ApiError::invalid(
            Some("temperature"),
            format!("temperature must be from 0 to 2, got {temperature}"),
        ));
    }
    let top_p = number(&v, "top_p")?.unwrap_or(1.0);
    if !(top_p > 0.0 && top_p <= 1.0) {
        return Err(ApiError::invalid(
            Some("top_p"),
            format!("top_p must be more than 0 and at most 1, got {top_p}"),
        ));
    }
    // vLLM's extension; -1 (its "off") or 0 keeps every token.
    let top_k = integer(&v, "top_k")?.unwrap_or(0);
    if top_k < -1 {
        return Err(ApiError::invalid(
            Some("top_k"),
            format!("top_k must be -1, 0 or more, got {top_k}"),
        ));
    }
    let stop = strings(&v, "stop")?.unwrap_or_default();
    if stop.len() > 16 || stop.iter().any(String::is_empty) {
        return Err(ApiError::invalid(
            Some("stop"),
            "stop takes at most 16 non-empty strings",
        ));
    }
    let seed = integer(&v, "seed")?.map(|s| s as u64);
    let stream = flag(&v, "stream")?;
    let include_usage = v
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(Parsed {
        input,
        n,
        sampling: Sampling {
            temperature: temperature as f32,
            top_p: top_p as f32,
            top_k: top_k.max(0) as usize,
        },
        max_tokens,
        stop,
        seed,
        stream,
        include_usage,
    })
}

fn finish_str(f: FinishReason) -> &'static str {
    match f {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
    }
}

#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub total_tokens: usize,
}

impl Usage {
    pub fn of(output: &Output) -> Self {
        let prompt_tokens = output.stats.prompt_tokens;
        let completion_tokens = output.completions.iter().map(|c| c.tokens.len()).sum();
        Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
        }
    }
}

/// Identity shared by a response and all its chunks.
#[derive(Clone, Debug)]
pub struct Meta {
    pub id: String,
    pub created: u64,
    pub model: String,
    pub endpoint: Endpoint,
}

impl Meta {
    pub fn new(endpoint: Endpoint, model: &str) -> Self {
        let prefix = match endpoint {
            Endpoint::Completions => "cmpl",
            Endpoint::Chat => "chatcmpl",
        };
        Meta {
            id: format!("{prefix}-{:024x}", rand::random::<u128>() >> 32),
            created: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            model: model.to_string(),
            endpoint,
        }
    }

    fn object(&self, chunk: bool) -> &'static str {
        match (self.endpoint, chunk) {
            (Endpoint::Completions, _) => "text_completion",
            (Endpoint::Chat, false) => "chat.completion",
            (Endpoint::Chat, true) => "chat.completion.chunk",
        }
    }

    /// The whole response of a request that is not streamed.
    pub fn response(&self, output: &Output) -> Value {
        let choices: Vec<Value> = output
            .completions
            .iter()
            .enumerate()
            .map(|(index, c)| {
                let finish = finish_str(c.finish_reason);
                match self.endpoint {
                    Endpoint::Completions => json!({
                        "text": c.text, "index": index, "logprobs": null, "finish_reason": finish,
                    }),
                    Endpoint::Chat => json!({
                        "index": index,
                        "message": {"role": "assistant", "content": c.text},
                        "logprobs": null,
                        "finish_reason": finish,
                    }),
                }
            })
            .collect();
        json!({
            "id": self.id,
            "object": self.object(false),
            "created": self.created,
            "model": self.model,
            "system_fingerprint": null,
            "choices": choices,
            "usage": Usage::of(output),
        })
    }

    /// One stream chunk for one choice. A chat stream's first chunk of a
    /// choice carries the role; with `usage_field` (the client asked for
    /// usage) the chunk says `"usage": null` as OpenAI's do.
    pub fn chunk(
        &self,
        index: usize,
        text: &str,
        first: bool,
        finish: Option<FinishReason>,
        usage_field: bool,
    ) -> Value {
        let finish = finish.map(finish_str);
        let choice = match self.endpoint {
            Endpoint::Completions => json!({
                "text": text, "index": index, "logprobs": null, "finish_reason": finish,
            }),
            Endpoint::Chat => {
                let delta = match (first, text.is_empty()) {
                    (true, _) => json!({"role": "assistant", "content": text}),
                    (false, false) => json!({"content": text}),
                    (false, true) => json!({}),
                };
                json!({"index": index, "delta": delta, "logprobs": null, "finish_reason": finish})
            }
        };
        let mut chunk = self.chunk_with(vec![choice], None);
        if usage_field {
            chunk["usage"] = Value::Null;
        }
        chunk
    }

    /// The last chunk of a stream that asked for usage: no choices.
    pub fn usage_chunk(&self, usage: Usage) -> Value {
        self.chunk_with(Vec::new(), Some(usage))
    }

    fn chunk_with(&self, choices: Vec<Value>, usage: Option<Usage>) -> Value {
        let mut chunk = json!({
            "id": self.id,
            "object": self.object(true),
            "created": self.created,
            "model": self.model,
            "system_fingerprint": null,
            "choices": choices,
        });
        if let Some(u) = usage {
            chunk["usage"] = json!(u);
        }
        chunk
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_n: 8,
            max_branches: 16,
            max_tokens: 100,
        }
    }

    fn err(body: &str, endpoint: Endpoint) -> ApiError {
        parse(body.as_bytes(), endpoint, &limits()).unwrap_err()
    }

    #[test]
    fn defaults_and_unknown_fields() {
        let p = parse(
            br#"{"model": "x", "prompt": "hi", "user": "u", "whatever": [1]}"#,
            Endpoint::Completions,
            &limits(),
        )
        .unwrap();
        assert_eq!(p.input, Input::Prompts(vec!["hi".into()]));
        assert_eq!((p.n, p.max_tokens, p.stream), (1, 16, false));
        assert_eq!(p.sampling.temperature, 1.0);
        let p = parse(
            br#"{"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}]}], "stop": "x", "max_completion_tokens": 7, "seed": 3}"#,
            Endpoint::Chat,
            &limits(),
        )
        .unwrap();
        assert_eq!((p.max_tokens, p.seed), (7, Some(3)));
        assert_eq!(p.stop, vec!["x".to_string()]);
    }

    #[test]
    fn bad_requests_name_the_field() {
        let chat = Endpoint::Chat;
        let cases = [
            ("{", None),
            ("[1]", None),
            (r#"{"messages": []}"#, Some("messages")),
            (
                r#"{"messages": [{"role": "user", "content": "a"}], "n": 0}"#,
                Some("n"),
            ),
            (
                r#"{"messages": [{"role": "user", "content": "a"}], "n": "2"}"#,
                Some("n"),
            ),
            (
                r#"{"messages": [{"role": "user", "content": "a"}], "max_tokens": -1}"#,
                Some("max_tokens"),
            ),
            (
                r#"{"messages": [{"role": "user", "content": "a"}], "max_tokens": 101}"#,
                Some("max_tokens"),
            ),
            (
                r#"{"messages": [{"role": "user", "content": "a"}], "temperature": 3}"#,
                Some("temperature"),
            ),
            (
                r#"{"messages": [{"role": "user", "content": "a"}], "top_p": 0}"#,
                Some("top_p"),
            ),
            (
                r#"{"messages": [{"role": "user", "content": "a"}], "stop": [""]}"#,
                Some("stop"),
            ),
        ];
        for (body, param) in cases {
            let e = err(body, chat);
            assert_eq!((e.status, e.param), (400, param), "{body}: {}", e.message);
            assert!(!e.message.is_empty());
        }
        let e = err(r#"{"prompt": [1, 2]}"#, Endpoint::Completions);
        assert!(e.message.contains("token-id"), "{}", e.message);
        let e = err(
            r#"{"prompt": ["a", "b", "c"], "n": 8}"#,
            Endpoint::Completions,
        );
        assert_eq!(e.param, Some("n"));
        let e = err(r#"{"prompt": "a", "logprobs": 2}"#, Endpoint::Completions);
        assert!(e.message.contains("logprobs"));
    }
}
