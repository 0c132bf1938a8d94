//! What the search needs from a language model: batch requests.

use crate::decode::{Completion, Engine, Output, Request, RunStats};
use anyhow::Result;
use std::collections::HashMap;

pub trait Llm {
    /// Renders a user message with the model's chat template.
    fn chat(&self, user: &str) -> Result<String>;
    /// Runs one batch request.
    fn generate(&mut self, request: &Request) -> Result<Output>;
}

impl Llm for Engine {
    fn chat(&self, user: &str) -> Result<String> {
        Ok(self.chat_prompt(user)?)
    }

    fn generate(&mut self, request: &Request) -> Result<Output> {
        Ok(Engine::generate(self, request)?)
    }
}

/// A scripted model for testing the search: each prompt that contains a key
/// gets that key's answers, one per sample in turn.
#[derive(Default)]
pub struct ScriptedLlm {
    pub answers: Vec<(String, Vec<String>)>,
    /// Every request it received, for assertions.
    pub requests: Vec<Request>,
}

impl ScriptedLlm {
    pub fn answer(mut self, key: &str, outputs: &[&str]) -> Self {
        self.answers.push((
            key.to_string(),
            outputs.iter().map(|s| s.to_string()).collect(),
        ));
        self
    }
}

impl Llm for ScriptedLlm {
    fn chat(&self, user: &str) -> Result<String> {
        Ok(user.to_string())
    }

    fn generate(&mut self, request: &Request) -> Result<Output> {
        self.requests.push(request.clone());
        let mut used: HashMap<usize, usize> = HashMap::new();
        let mut completions = Vec::new();
        for (p, prompt) in request.prompts.iter().enumerate() {
            // The longest matching key wins, so specific scripts override general ones.
            let (key, outputs) = self
                .answers
                .iter()
                .enumerate()
                .filter(|(_, (k, _))| prompt.contains(k.as_str()))
                .max_by_key(|(_, (k, _))| k.len())
                .map(|(i, (_, o))| (i, o))
                .ok_or_else(|| anyhow::anyhow!("no scripted answer for prompt {prompt:?}"))?;
            for s in 0..request.n {
                let turn = used.entry(key).or_insert(0);
                let text = outputs[*turn % outputs.len()].clone();
                *turn += 1;
                completions.push(Completion {
                    prompt_index: p,
                    sample_index: s,
                    tokens: vec![0; text.len()],
                    text,
                    finish_reason: crate::decode::FinishReason::Stop,
                    stats: Default::default(),
                });
            }
        }
        let generated_tokens = completions.iter().map(|c| c.tokens.len()).sum();
        Ok(Output {
            completions,
            stats: RunStats {
                engine: "scripted".into(),
                generated_tokens,
                ..RunStats::default()
            },
            trace: Vec::new(),
        })
    }
}
