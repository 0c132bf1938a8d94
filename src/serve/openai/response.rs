//! Responses in OpenAI's format: whole responses, stream chunks and the
//! models list.

use super::request::Endpoint;
use crate::decode::{FinishReason, Output};
use serde::Serialize;

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

/// A whole response, or one stream chunk.
#[derive(Serialize)]
pub struct Response<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    /// Always null.
    system_fingerprint: Option<&'a str>,
    choices: Vec<Choice<'a>>,
    /// Absent from the chunks of a stream that did not ask for usage; `null`
    /// in those of one that did, but its last.
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Option<Usage>>,
}

/// One choice; `logprobs` is always null.
#[derive(Serialize)]
#[serde(untagged)]
enum Choice<'a> {
    /// Completions, whole or streamed.
    Text {
        text: &'a str,
        index: usize,
        logprobs: Option<()>,
        finish_reason: Option<&'static str>,
    },
    /// A whole chat completion.
    Message {
        index: usize,
        message: ChatMessage<'a>,
        logprobs: Option<()>,
        finish_reason: &'static str,
    },
    /// A chat stream chunk.
    Delta {
        index: usize,
        delta: Delta<'a>,
        logprobs: Option<()>,
        finish_reason: Option<&'static str>,
    },
}

#[derive(Serialize)]
struct ChatMessage<'a> {
    role: &'static str,
    content: &'a str,
}

/// What a chat chunk adds: the role comes with a choice's first chunk.
#[derive(Serialize)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
}

fn finish_str(f: FinishReason) -> &'static str {
    match f {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
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

    fn with<'a>(
        &'a self,
        chunk: bool,
        choices: Vec<Choice<'a>>,
        usage: Option<Option<Usage>>,
    ) -> Response<'a> {
        Response {
            id: &self.id,
            object: self.object(chunk),
            created: self.created,
            model: &self.model,
            system_fingerprint: None,
            choices,
            usage,
        }
    }

    /// The whole response of a request that is not streamed.
    pub fn response<'a>(&'a self, output: &'a Output) -> Response<'a> {
        let choices = output.completions.iter().enumerate();
        let choices = choices
            .map(|(index, c)| {
                let finish = finish_str(c.finish_reason);
                match self.endpoint {
                    Endpoint::Completions => Choice::Text {
                        text: &c.text,
                        index,
                        logprobs: None,
                        finish_reason: Some(finish),
                    },
                    Endpoint::Chat => Choice::Message {
                        index,
                        message: ChatMessage {
                            role: "assistant",
                            content: &c.text,
                        },
                        logprobs: None,
                        finish_reason: finish,
                    },
                }
            })
            .collect();
        self.with(false, choices, Some(Some(Usage::of(output))))
    }

    /// One stream chunk for one choice. A chat stream's first chunk of a
    /// choice carries the role; with `usage_field` (the client asked for
    /// usage) the chunk says `"usage": null` as OpenAI's do.
    pub fn chunk<'a>(
        &'a self,
        index: usize,
        text: &'a str,
        first: bool,
        finish: Option<FinishReason>,
        usage_field: bool,
    ) -> Response<'a> {
        let finish_reason = finish.map(finish_str);
        let choice = match self.endpoint {
            Endpoint::Completions => Choice::Text {
                text,
                index,
                logprobs: None,
                finish_reason,
            },
            Endpoint::Chat => Choice::Delta {
                index,
                delta: Delta {
                    role: first.then_some("assistant"),
                    content: (first || !text.is_empty()).then_some(text),
                },
                logprobs: None,
                finish_reason,
            },
        };
        self.with(true, vec![choice], usage_field.then_some(None))
    }

    /// The last chunk of a stream that asked for usage: no choices.
    pub fn usage_chunk(&self, usage: Usage) -> Response<'_> {
        self.with(true, Vec::new(), Some(Some(usage)))
    }
}

/// `GET /v1/models`: the one model served.
#[derive(Serialize)]
pub struct ModelList<'a> {
    object: &'static str,
    data: [ModelCard<'a>; 1],
}

#[derive(Serialize)]
struct ModelCard<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    owned_by: &'static str,
}

impl<'a> ModelList<'a> {
    pub fn one(id: &'a str, created: u64) -> Self {
        ModelList {
            object: "list",
            data: [ModelCard {
                id,
                object: "model",
                created,
                owned_by: "seed",
            }],
        }
    }
}
