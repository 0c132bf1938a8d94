//! The models' own chat templates, rendered as llama-server renders them. The
//! expected strings are what llama-server (llama.cpp 11434) answered on
//! `/apply-template` for the same messages and GGUF.

mod common;

use seed::model::llama::{LlamaLm, LlamaOptions};
use seed::model::{ChatMessage, Model};

fn load(path: &std::path::Path) -> LlamaLm {
    let options = LlamaOptions {
        context: 256,
        max_sequences: 1,
        threads: 0,
        exact: false,
    };
    LlamaLm::load(path, &options).expect("load model")
}

fn message(role: &str, content: &str) -> ChatMessage {
    ChatMessage {
        role: role.into(),
        content: content.into(),
    }
}

fn conversation() -> Vec<ChatMessage> {
    vec![
        message("user", "Q?"),
        message("assistant", "A."),
        message("user", "Sure?"),
    ]
}

/// One turn and a three-turn conversation, each after the template's default
/// system message `system`.
fn assert_renders_after(model: &LlamaLm, system: &str) {
    assert_eq!(
        model.chat_prompt("Input: 4 5 6 10").unwrap(),
        format!("{system}<|im_start|>user\nInput: 4 5 6 10<|im_end|>\n<|im_start|>assistant\n")
    );
    assert_eq!(
        model.chat(&conversation()).unwrap(),
        format!("{system}<|im_start|>user\nQ?<|im_end|>\n<|im_start|>assistant\nA.<|im_end|>\n<|im_start|>user\nSure?<|im_end|>\n<|im_start|>assistant\n")
    );
}

#[test]
fn qwen_prompts_carry_the_templates_default_system_message() {
    let _lock = common::REAL_MODEL_LOCK
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let qwen = load(&common::model_path(seed::fetch::models::DRAFT_DEFAULT));
    assert_renders_after(
        &qwen,
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n",
    );
}

#[test]
fn smollm_prompts_carry_the_templates_default_system_message() {
    let _lock = common::REAL_MODEL_LOCK
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let smollm = load(&common::smollm_path());
    assert_renders_after(
        &smollm,
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n",
    );
}

#[test]
fn a_caller_system_message_replaces_the_default() {
    let _lock = common::REAL_MODEL_LOCK
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let qwen = load(&common::model_path(seed::fetch::models::DRAFT_DEFAULT));
    let text = qwen
        .chat(&[message("system", "Be brief."), message("user", "Hi")])
        .unwrap();
    assert_eq!(
        text,
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    );
}
