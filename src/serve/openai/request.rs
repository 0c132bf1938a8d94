//! Request bodies of both endpoints: read with serde, then checked.
//!
//! A field whose type gets a message of ours is read leniently ([`Lenient`]:
//! the expected type, or any JSON value kept for the message) and checked in
//! [`RequestBody::validate`], so that every mistake names its field. Unknown
//! fields are ignored.

use super::error::ApiError;
use crate::decode::Sampling;
use crate::model::ChatMessage;
use serde::de::{DeserializeOwned, Deserializer, Error as _};
use serde::Deserialize;
use serde_json::{Map, Value};

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

/// A field as sent: of the expected type, or anything else.
#[derive(Deserialize)]
#[serde(untagged)]
enum Lenient<T> {
    Valid(T),
    Invalid(Value),
}

/// `T` read from a JSON object only (serde also reads structs from arrays).
struct Object<T>(T);

impl<'de, T: DeserializeOwned> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = Map::deserialize(d)?;
        T::deserialize(Value::Object(map))
            .map(Object)
            .map_err(D::Error::custom)
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StringOrList {
    One(String),
    List(Vec<String>),
}

impl StringOrList {
    fn into_vec(self) -> Vec<String> {
        match self {
            StringOrList::One(s) => vec![s],
            StringOrList::List(list) => list,
        }
    }
}

#[derive(Deserialize)]
struct Message {
    role: String,
    content: Option<Lenient<Content>>,
}

/// A message's content: text, or a list of parts.
#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Lenient<Object<Part>>>),
}

#[derive(Deserialize)]
struct Part {
    #[serde(rename = "type")]
    kind: String,
    text: String,
}

#[derive(Deserialize)]
struct StreamOptions {
    include_usage: Option<Lenient<bool>>,
}

/// A request body of either endpoint, as sent.
#[derive(Deserialize)]
pub struct RequestBody {
    prompt: Option<Lenient<StringOrList>>,
    messages: Option<Lenient<Vec<Lenient<Object<Message>>>>>,
    n: Option<Lenient<i64>>,
    max_tokens: Option<Lenient<i64>>,
    max_completion_tokens: Option<Lenient<i64>>,
    temperature: Option<Lenient<f64>>,
    top_p: Option<Lenient<f64>>,
    /// vLLM's extension.
    top_k: Option<Lenient<i64>>,
    stop: Option<Lenient<StringOrList>>,
    seed: Option<Lenient<i64>>,
    stream: Option<Lenient<bool>>,
    stream_options: Option<Lenient<Object<StreamOptions>>>,
    // Not implemented: refused when they ask for something.
    presence_penalty: Option<Lenient<f64>>,
    frequency_penalty: Option<Lenient<f64>>,
    logprobs: Option<Value>,
    top_logprobs: Option<Value>,
    echo: Option<Value>,
    logit_bias: Option<Value>,
    tools: Option<Value>,
    functions: Option<Value>,
}

/// Parses and checks a request body.
pub fn parse(body: &[u8], endpoint: Endpoint, limits: &Limits) -> Result<Parsed, ApiError> {
    RequestBody::read(body)?.validate(endpoint, limits)
}

/// A field of a simple type: `None` when absent or null.
fn typed<T: Copy>(
    field: &Option<Lenient<T>>,
    param: &'static str,
    kind: &str,
) -> Result<Option<T>, ApiError> {
    match field {
        None => Ok(None),
        Some(Lenient::Valid(x)) => Ok(Some(*x)),
        Some(Lenient::Invalid(other)) => Err(ApiError::invalid(
            Some(param),
            format!("{param} must be {kind}, got {other}"),
        )),
    }
}

/// Temperatures this close to 0 decode greedily: dividing logits by them
/// overflows f32, which would sample nothing.
const GREEDY_BELOW: f64 = 1e-5;

fn greedy_below(temperature: f64) -> f64 {
    if temperature < GREEDY_BELOW {
        0.0
    } else {
        temperature
    }
}

fn integer(field: &Option<Lenient<i64>>, param: &'static str) -> Result<Option<i64>, ApiError> {
    match field {
        // Past i64: the range checks then name it.
        Some(Lenient::Invalid(Value::Number(x))) if x.is_u64() => Ok(Some(i64::MAX)),
        _ => typed(field, param, "an integer"),
    }
}

/// A string or a list of strings, as a list; `bad` words the error.
fn string_list(
    field: Option<Lenient<StringOrList>>,
    bad: impl FnOnce() -> ApiError,
) -> Result<Option<Vec<String>>, ApiError> {
    match field {
        None => Ok(None),
        Some(Lenient::Valid(s)) => Ok(Some(s.into_vec())),
        Some(Lenient::Invalid(_)) => Err(bad()),
    }
}

/// Whether an unsupported field asks for something: not null, false or empty.
fn asks_for_something(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => false,
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

/// Text of a message's content: a string or a list of text parts.
fn content_text(content: Option<Lenient<Content>>) -> Result<String, ApiError> {
    let bad = |message: &str| ApiError::invalid(Some("messages"), message);
    match content {
        None => Ok(String::new()),
        Some(Lenient::Valid(Content::Text(text))) => Ok(text),
        Some(Lenient::Valid(Content::Parts(parts))) => parts
            .into_iter()
            .map(|part| match part {
                Lenient::Valid(Object(Part { kind, text })) if kind == "text" => Ok(text),
                _ => Err(bad("only text content parts are supported")),
            })
            .collect(),
        Some(Lenient::Invalid(_)) => Err(bad(
            "a message's content must be a string or a list of text parts",
        )),
    }
}

impl RequestBody {
    /// Reads a body. It is read as a `Value` first, which words the errors
    /// of bad JSON and lets a repeated key count once (the last).
    pub fn read(body: &[u8]) -> Result<Self, ApiError> {
        let not_json = |e: serde_json::Error| {
            ApiError::invalid(None, format!("the request body is not valid JSON: {e}"))
        };
        let v: Value = serde_json::from_slice(body).map_err(not_json)?;
        if !v.is_object() {
            return Err(ApiError::invalid(
                None,
                "the request body must be a JSON object",
            ));
        }
        // Every field is lenient: an object always reads.
        serde_json::from_value(v).map_err(not_json)
    }

    /// Checks the fields in a fixed order; the first mistake is answered.
    pub fn validate(mut self, endpoint: Endpoint, limits: &Limits) -> Result<Parsed, ApiError> {
        self.refuse_unsupported()?;
        let input = match endpoint {
            Endpoint::Completions => Input::Prompts(self.prompts()?),
            Endpoint::Chat => Input::Chat(self.messages()?),
        };
        let n = self.n(&input, limits)?;
        let max_tokens = self.max_tokens(endpoint, limits)?;
        let sampling = self.sampling()?;
        let stop = self.stop()?;
        Ok(Parsed {
            input,
            n,
            sampling,
            max_tokens,
            stop,
            seed: integer(&self.seed, "seed")?.map(|s| s as u64),
            stream: typed(&self.stream, "stream", "true or false")?.unwrap_or(false),
            include_usage: matches!(
                self.stream_options,
                Some(Lenient::Valid(Object(StreamOptions {
                    include_usage: Some(Lenient::Valid(true)),
                })))
            ),
        })
    }

    /// Refuses what we do not implement, so that a client never silently
    /// gets other output than it asked for.
    fn refuse_unsupported(&self) -> Result<(), ApiError> {
        let refuse = |p: &str| Err(ApiError::invalid(None, format!("{p} is not supported")));
        let penalties = [
            ("presence_penalty", &self.presence_penalty),
            ("frequency_penalty", &self.frequency_penalty),
        ];
        for (p, value) in penalties {
            if matches!(value, Some(Lenient::Valid(x)) if *x != 0.0) {
                return refuse(p);
            }
        }
        let asked = [
            ("logprobs", &self.logprobs),
            ("top_logprobs", &self.top_logprobs),
            ("echo", &self.echo),
            ("logit_bias", &self.logit_bias),
            ("tools", &self.tools),
            ("functions", &self.functions),
        ];
        for (p, value) in asked {
            if value.as_ref().is_some_and(asks_for_something) {
                return refuse(p);
            }
        }
        Ok(())
    }

    fn prompts(&mut self) -> Result<Vec<String>, ApiError> {
        let bad = |message: &str| ApiError::invalid(Some("prompt"), message);
        let prompts = string_list(self.prompt.take(), || {
            bad("prompt must be a string or a list of strings (token-id prompts are not supported)")
        })?
        .ok_or_else(|| bad("prompt is required"))?;
        if prompts.is_empty() {
            return Err(bad("prompt is an empty list"));
        }
        Ok(prompts)
    }

    fn messages(&mut self) -> Result<Vec<ChatMessage>, ApiError> {
        let bad = |message: &str| ApiError::invalid(Some("messages"), message);
        let messages = match self.messages.take() {
            Some(Lenient::Valid(m)) if !m.is_empty() => m,
            Some(Lenient::Valid(_)) => return Err(bad("messages is empty")),
            _ => {
                return Err(bad(
                    "messages is required: a list of {role, content} objects",
                ))
            }
        };
        messages
            .into_iter()
            .map(|m| match m {
                Lenient::Valid(Object(m)) => Ok(ChatMessage {
                    role: m.role,
                    content: content_text(m.content)?,
                }),
                Lenient::Invalid(_) => Err(bad("every message needs a role")),
            })
            .collect()
    }

    fn n(&self, input: &Input, limits: &Limits) -> Result<usize, ApiError> {
        let n = integer(&self.n, "n")?.unwrap_or(1);
        if n < 1 || n as u64 > limits.max_n as u64 {
            return Err(ApiError::invalid(
                Some("n"),
                format!("n must be from 1 to {}, got {n}", limits.max_n),
            ));
        }
        let n = n as usize;
        let prompts = match input {
            Input::Prompts(p) => p.len(),
            Input::Chat(_) => 1,
        };
        if prompts * n > limits.max_branches {
            return Err(ApiError::invalid(
                Some("n"),
                format!(
                    "{prompts} prompts times n = {n} is more than the server's {} completions per request",
                    limits.max_branches
                ),
            ));
        }
        Ok(n)
    }

    /// OpenAI's defaults: 16 tokens for completions; chat runs to the server's limit.
    fn max_tokens(&self, endpoint: Endpoint, limits: &Limits) -> Result<usize, ApiError> {
        let (param, max_tokens) =
            match integer(&self.max_completion_tokens, "max_completion_tokens")? {
                Some(m) => ("max_completion_tokens", Some(m)),
                None => ("max_tokens", integer(&self.max_tokens, "max_tokens")?),
            };
        match (max_tokens, endpoint) {
            (Some(m), _) if m < 0 || m as u64 > limits.max_tokens as u64 => Err(ApiError::invalid(
                Some(param),
                format!("{param} must be from 0 to {}, got {m}", limits.max_tokens),
            )),
            (Some(m), _) => Ok(m as usize),
            (None, Endpoint::Completions) => Ok(16.min(limits.max_tokens)),
            (None, Endpoint::Chat) => Ok(limits.max_tokens),
        }
    }

    fn sampling(&self) -> Result<Sampling, ApiError> {
        let temperature = typed(&self.temperature, "temperature", "a number")?.unwrap_or(1.0);
        if !(0.0..=2.0).contains(&temperature) {
            return Err(ApiError::invalid(
                Some("temperature"),
                format!("temperature must be from 0 to 2, got {temperature}"),
            ));
        }
        let top_p = typed(&self.top_p, "top_p", "a number")?.unwrap_or(1.0);
        if !(top_p > 0.0 && top_p <= 1.0) {
            return Err(ApiError::invalid(
                Some("top_p"),
                format!("top_p must be more than 0 and at most 1, got {top_p}"),
            ));
        }
        // -1 (vLLM's "off") or 0 keeps every token.
        let top_k = integer(&self.top_k, "top_k")?.unwrap_or(0);
        if top_k < -1 {
            return Err(ApiError::invalid(
                Some("top_k"),
                format!("top_k must be -1, 0 or more, got {top_k}"),
            ));
        }
        Ok(Sampling {
            temperature: greedy_below(temperature) as f32,
            top_p: top_p as f32,
            top_k: top_k.max(0) as usize,
        })
    }

    fn stop(&mut self) -> Result<Vec<String>, ApiError> {
        let bad = |message: &str| ApiError::invalid(Some("stop"), message);
        let stop = string_list(self.stop.take(), || {
            bad("stop must be a string or a list of strings")
        })?
        .unwrap_or_default();
        if stop.len() > 16 || stop.iter().any(String::is_empty) {
            return Err(bad("stop takes at most 16 non-empty strings"));
        }
        Ok(stop)
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
    fn tiny_temperatures_are_greedy() {
        let temperature = |t: &str| {
            let body = format!(r#"{{"prompt": "hi", "temperature": {t}}}"#);
            parse(body.as_bytes(), Endpoint::Completions, &limits())
                .unwrap()
                .sampling
                .temperature
        };
        assert_eq!(temperature("1e-40"), 0.0);
        assert_eq!(temperature("0.000009"), 0.0);
        assert_eq!(temperature("0"), 0.0);
        assert_eq!(temperature("0.00001"), 1e-5);
        assert_eq!(temperature("0.7"), 0.7);
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
