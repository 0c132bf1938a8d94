//! Chat prompts of a llama.cpp model: the template its GGUF carries, rendered
//! by [`chat_template`], or by llama.cpp's built-in renderer where minijinja
//! cannot render it.

use super::chat_template;
use super::{ChatMessage, ModelError, Result};
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};

pub(super) fn chat(model: &LlamaModel, messages: &[ChatMessage]) -> Result<String> {
    let template = model.chat_template(None).map_err(template_error)?;
    let source = template.to_str().map_err(template_error)?;
    let vocab = model.vocab();
    let piece =
        |token| String::from_utf8_lossy(&vocab.token_to_piece(token, true, None)).into_owned();
    let (bos, eos) = (piece(vocab.bos()), piece(vocab.eos()));
    let special = chat_template::SpecialTokens {
        bos: &bos,
        eos: &eos,
    };
    match chat_template::render(source, messages, &special) {
        // The tokenizer adds BOS itself; a template that prints it too would double it.
        Ok(text) if vocab.should_add_bos() => Ok(match text.strip_prefix(&bos) {
            Some(rest) => rest.to_owned(),
            None => text,
        }),
        Ok(text) => Ok(text),
        // A template beyond minijinja's Jinja: llama.cpp's built-in renderer
        // for its family (as llama-server's `--no-jinja`).
        Err(_) => builtin_chat(model, &template, messages),
    }
}

fn builtin_chat(
    model: &LlamaModel,
    template: &LlamaChatTemplate,
    messages: &[ChatMessage],
) -> Result<String> {
    let messages = messages
        .iter()
        .map(|m| LlamaChatMessage::new(m.role.clone(), m.content.clone()))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(template_error)?;
    model
        .apply_chat_template(template, &messages, true)
        .map_err(template_error)
}

fn template_error(e: impl std::fmt::Display) -> ModelError {
    ModelError::Tokenizer(format!("chat template: {e}"))
}
