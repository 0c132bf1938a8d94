//! What the search needs from a language model: batch requests.

use super::task::SampleSpec;
use crate::decode::{Completion, Engine, Output, Request, RunStats};
use crate::model::{transcript, ChatMessage};
use anyhow::Result;
use std::collections::HashMap;

pub trait Llm {
    /// Renders a conversation with the model's chat template, ready for the
    /// assistant's reply.
    fn chat(&self, messages: &[ChatMessage]) -> Result<String>;
    /// Runs one batch request.
    fn generate(&mut self, request: &Request) -> Result<Output>;
}

/// A spec's prompt as the model reads it: the user message rendered, then the
/// answer so far that the samples continue; or, with a follow-up, the whole
/// conversation, the answer so far being the model's finished turn.
pub fn render(llm: &dyn Llm, spec: &SampleSpec) -> Result<String> {
    let message = |role: &str, content: &str| ChatMessage {
        role: role.into(),
        content: content.into(),
    };
    let user = message("user", &spec.prompt);
    match &spec.follow_up {
        None => Ok(llm.chat(&[user])? + &spec.response + &spec.answer_start),
        Some(follow_up) => Ok(llm.chat(&[
            user,
            message("assistant", &spec.response),
            message("user", follow_up),
        ])? + &spec.answer_start),
    }
}

/// A conversation as plain text, for models the caller renders for (scripts
/// and servers, which apply their own template to one user message).
pub fn plain(messages: &[ChatMessage]) -> Result<String> {
    Ok(transcript(messages, |user| Ok(user.to_string()))?)
}

impl Llm for Engine {
    fn chat(&self, messages: &[ChatMessage]) -> Result<String> {
        Ok(Engine::chat(self, messages)?)
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
    /// Answers that contain a key get its log-probability for every token
    /// (one token per byte); the others report none.
    pub certainty: Vec<(String, f32)>,
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

impl ScriptedLlm {
    /// Gives answers that contain `key` the log-probability `logprob` per token.
    pub fn sure_of(mut self, key: &str, logprob: f32) -> Self {
        self.certainty.push((key.to_string(), logprob));
        self
    }

    fn logprobs_of(&self, text: &str) -> Vec<f32> {
        let found = self
            .certainty
            .iter()
            .find(|(k, _)| text.contains(k.as_str()));
        found.map_or_else(Vec::new, |&(_, l)| vec![l; text.len()])
    }
}

impl Llm for ScriptedLlm {
    fn chat(&self, messages: &[ChatMessage]) -> Result<String> {
        plain(messages)
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
                    logprobs: self.logprobs_of(&text),
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
