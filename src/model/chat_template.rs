//! A model's own chat template: the Jinja text a GGUF carries in
//! `tokenizer.chat_template`, rendered as Hugging Face's `apply_chat_template`
//! and llama-server render it (the whole template, its default system message
//! included; trim_blocks and lstrip_blocks on, as transformers sets them).
//! llama.cpp's built-in renderer (`llama_chat_apply_template`) matches a
//! template to a known family and writes the turns only, so a Qwen2.5 model
//! lost its default system message and answered the Tree of Thoughts client
//! in prose where llama-server's rendering made it follow the few-shot pattern.

use super::ChatMessage;
use minijinja::syntax::SyntaxConfig;
use minijinja::{context, Environment, Error, ErrorKind, Value};

/// The special tokens' text a template may print.
pub struct SpecialTokens<'a> {
    pub bos: &'a str,
    pub eos: &'a str,
}

/// Renders `messages` with `template`, ready for the assistant's reply.
pub fn render(
    template: &str,
    messages: &[ChatMessage],
    special: &SpecialTokens,
) -> Result<String, Error> {
    let mut env = Environment::new();
    env.set_syntax(
        SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()?,
    );
    // Templates call Python's string methods (`.strip()`, `.startswith()`).
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function(
        "raise_exception",
        |message: String| -> Result<Value, Error> {
            Err(Error::new(ErrorKind::InvalidOperation, message))
        },
    );
    let messages: Vec<Value> = messages
        .iter()
        .map(|m| context! { role => m.role.as_str(), content => m.content.as_str() })
        .collect();
    env.render_str(
        template,
        context! {
            messages,
            add_generation_prompt => true,
            bos_token => special.bos,
            eos_token => special.eos,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECIAL: SpecialTokens = SpecialTokens {
        bos: "<s>",
        eos: "</s>",
    };

    fn user(content: &str) -> ChatMessage {
        ChatMessage {
            role: "user".into(),
            content: content.into(),
        }
    }

    #[test]
    fn renders_default_system_message_and_trims_blocks() {
        // Expected: what Python's jinja2 3.1.6 renders with the same options.
        let template = "{%- if messages[0]['role'] != 'system' %}\n<sys>default</sys>\n{%- endif %}\n{% for m in messages %}\n    {% if m.content %}{{ '<' + m.role + '>' + m.content.strip() + '</' + m.role + '>' }}{% endif %}\n{% endfor %}\n{% if add_generation_prompt %}<assistant>{% endif %}";
        let text = render(template, &[user(" hi ")], &SPECIAL).unwrap();
        assert_eq!(text, "<sys>default</sys><user>hi</user><assistant>");
    }

    #[test]
    fn raise_exception_is_an_error_naming_its_message() {
        let template = "{{ raise_exception('roles must alternate') }}";
        let err = render(template, &[user("hi")], &SPECIAL).unwrap_err();
        assert!(err.to_string().contains("roles must alternate"), "{err}");
    }

    #[test]
    fn special_tokens_are_printed_where_asked() {
        let template = "{{ bos_token }}{{ messages[0].content }}{{ eos_token }}";
        let text = render(template, &[user("hi")], &SPECIAL).unwrap();
        assert_eq!(text, "<s>hi</s>");
    }
}
