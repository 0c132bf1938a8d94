//! A parsed request made ready for the engine: its prompts rendered with the
//! chat template, tokenized once and checked against the context. The HTTP
//! side does it with the model's shareable text side (`Model::text`), so that
//! a huge prompt never stalls the engine's streams; the engine's thread does
//! it for a model without one.

use super::openai::{ApiError, Input, Parsed};
use crate::decode::{DecodeError, Request, Tokenized};
use crate::model::{self, ChatMessage, Token};

/// Renders, tokenizes and checks `p` for a context of `context` tokens.
pub fn prepare(
    p: &Parsed,
    chat: impl Fn(&[ChatMessage]) -> model::Result<String>,
    tokenize: impl Fn(&str) -> model::Result<Vec<Token>>,
    context: usize,
) -> Result<Tokenized, ApiError> {
    let (prompts, param) = match &p.input {
        Input::Prompts(prompts) => (prompts.clone(), "prompt"),
        Input::Chat(messages) => {
            let prompt =
                chat(messages).map_err(|e| ApiError::invalid(Some("messages"), e.to_string()))?;
            (vec![prompt], "messages")
        }
    };
    let request = Request {
        prompts,
        n: p.n,
        sampling: p.sampling.clone(),
        draft_temperature: None,
        max_tokens: p.max_tokens,
        stop: p.stop.clone(),
        seed: p.seed.unwrap_or_else(rand::random),
    };
    let tokenized = Tokenized::new(request, tokenize).map_err(|err| match err {
        DecodeError::Model(_) => ApiError::invalid(Some(param), err.to_string()),
        _ => ApiError::invalid(None, err.to_string()),
    })?;
    fits_context(&tokenized, context, param)?;
    Ok(tokenized)
}

/// Every prompt holds a token and leaves room for `max_tokens`.
fn fits_context(t: &Tokenized, context: usize, param: &'static str) -> Result<(), ApiError> {
    let max_tokens = t.request.max_tokens;
    for tokens in t.prompts.iter().map(Vec::len) {
        if tokens == 0 {
            return Err(ApiError::invalid(Some(param), "a prompt is empty"));
        }
        if tokens + max_tokens > context {
            return Err(ApiError::invalid(
                Some(param),
                format!(
                    "This model's maximum context length is {context} tokens. However, you \
                     requested {} tokens ({tokens} in the prompt, {max_tokens} for the completion). \
                     Please reduce the length of the prompt or completion.",
                    tokens + max_tokens,
                ),
            )
            .with_code("context_length_exceeded"));
        }
    }
    Ok(())
}
