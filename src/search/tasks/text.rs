//! Creative Writing (Tree of Thoughts): from four sentences, step 1 writes a
//! plan and step 2 a passage of four short paragraphs ending with them.
//! States are compared by ToT's vote prompt. The coherency score needs the
//! model, so the search scores passages itself with [`score_prompt`] and
//! [`parse_score`]; `check` only verifies the four endings.

use anyhow::{bail, Result};

use super::{parse_votes, render, vote_prompt};
use crate::search::task::{Chain, Check, SampleSpec, Task};

const COT: &str = include_str!("../../../prompts/text/cot.txt");
const IO: &str = include_str!("../../../prompts/text/io.txt");
const PASSAGE: &str = include_str!("../../../prompts/text/passage.txt");
const SCORE: &str = include_str!("../../../prompts/text/score.txt");

pub struct Text {
    input: String,
    sentences: Vec<String>,
}

impl Text {
    /// `input` is one line of the dataset: normally four sentences. Five lines
    /// of ToT's file (5, 28, 49, 59, 81) hold a truncated sentence run into the
    /// next one ("Instead of a bachelorette party You realize ..."), so they
    /// read as three; the passage then needs one paragraph per sentence read.
    pub fn new(input: &str) -> Result<Self> {
        let sentences = split_sentences(input);
        if sentences.is_empty() {
            bail!(
                "a Creative Writing input needs sentences, got '{}'",
                input.trim()
            );
        }
        Ok(Self {
            input: input.trim().to_string(),
            sentences,
        })
    }

    pub fn sentences(&self) -> &[String] {
        &self.sentences
    }
}

/// Splits text after '.', '!' or '?' (and any closing quotes) followed by a space.
pub fn split_sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = text.trim().chars().peekable();
    while let Some(c) = chars.next() {
        current.push(c);
        if matches!(c, '.' | '!' | '?') {
            while let Some(&q) = chars.peek() {
                if matches!(q, '"' | '\'' | '”' | '’' | ')') {
                    current.push(q);
                    chars.next();
                } else {
                    break;
                }
            }
            if chars.peek().is_none_or(|c| c.is_whitespace()) {
                out.push(current.trim().to_string());
                current.clear();
            }
        }
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_string());
    }
    out
}

/// The passage of a state: what follows its last "Passage:" line.
pub fn passage_of(state: &str) -> &str {
    state
        .rsplit_once("Passage:")
        .map_or(state, |(_, passage)| passage)
        .trim()
}

/// ToT's coherency score prompt for a passage.
pub fn score_prompt(passage: &str) -> String {
    format!("{SCORE}{}", passage.trim())
}

/// The score after the last "coherency score is", if it is in 1..=10.
pub fn parse_score(output: &str) -> Option<u32> {
    let lower = output.to_lowercase();
    let at = lower.rfind("coherency score is")?;
    let score = super::first_integer(&lower[at + "coherency score is".len()..])?;
    let score = u32::try_from(score).ok()?;
    (1..=10).contains(&score).then_some(score)
}

fn squash(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// True when the passage has one paragraph per sentence, each ending with its
/// sentence in order; whitespace differences do not matter.
pub fn endings_match(passage: &str, sentences: &[String]) -> bool {
    let paragraphs: Vec<String> = passage
        .split("\n\n")
        .map(squash)
        .filter(|p| !p.is_empty())
        .collect();
    paragraphs.len() == sentences.len()
        && paragraphs
            .iter()
            .zip(sentences)
            .all(|(p, s)| p.ends_with(&squash(s)))
}

fn strip_label<'a>(text: &'a str, label: &str) -> &'a str {
    let text = text.trim();
    text.strip_prefix(label).unwrap_or(text).trim()
}

impl Task for Text {
    fn name(&self) -> &'static str {
        "text"
    }

    fn problem(&self) -> &str {
        &self.input
    }

    fn steps(&self) -> usize {
        2
    }

    /// Step 0 asks for the plan (ToT's prompt, cut before the passage);
    /// step 1 asks for the passage that follows the plan in the state.
    fn sample(&self, state: &str, step: usize) -> SampleSpec {
        if step == 0 {
            return SampleSpec {
                prompt: render(COT, &[("input", &self.input)]),
                stop: vec!["Passage:".into()],
                max_tokens: 300,
                ..SampleSpec::default()
            };
        }
        let plan = strip_label(state.split("Passage:").next().unwrap_or(""), "Plan:");
        SampleSpec {
            prompt: render(PASSAGE, &[("input", &self.input), ("plan", plan)]),
            stop: vec![],
            max_tokens: 700,
            ..SampleSpec::default()
        }
    }

    fn propose(&self, state: &str, step: usize) -> SampleSpec {
        self.sample(state, step)
    }

    /// A plan or a passage is one thought.
    fn parse_proposals(&self, _state: &str, output: &str) -> Vec<String> {
        let output = output.trim();
        if output.is_empty() {
            vec![]
        } else {
            vec![output.to_string()]
        }
    }

    /// States read like ToT's: "Plan:\n...\n\nPassage:\n...".
    fn extend(&self, state: &str, thought: &str) -> String {
        if state.trim().is_empty() {
            format!("Plan:\n{}", strip_label(thought, "Plan:"))
        } else {
            format!(
                "{}\n\nPassage:\n{}",
                state.trim(),
                strip_label(thought, "Passage:")
            )
        }
    }

    /// Asks for the coherency score of the passage (or of the plan, before one exists).
    fn value(&self, state: &str, _step: usize) -> SampleSpec {
        SampleSpec {
            prompt: score_prompt(passage_of(state)),
            stop: vec![],
            max_tokens: 300,
            ..SampleSpec::default()
        }
    }

    /// The mean score over samples that gave one; 0 when none did.
    fn value_of(&self, _state: &str, outputs: &[String]) -> f64 {
        let scores: Vec<f64> = outputs
            .iter()
            .filter_map(|o| parse_score(o))
            .map(f64::from)
            .collect();
        if scores.is_empty() {
            0.0
        } else {
            scores.iter().sum::<f64>() / scores.len() as f64
        }
    }

    fn vote(&self, states: &[String], _step: usize) -> SampleSpec {
        let instruction = render(COT, &[("input", &self.input)]);
        SampleSpec {
            prompt: vote_prompt(&instruction, states),
            stop: vec![],
            max_tokens: 600,
            ..SampleSpec::default()
        }
    }

    fn votes(&self, states: &[String], outputs: &[String]) -> Vec<f64> {
        parse_votes(outputs, states.len())
    }

    fn is_finished(&self, state: &str) -> bool {
        state.contains("Passage:")
    }

    /// ToT's standard and chain-of-thought prompts.
    fn chain(&self, style: Chain) -> SampleSpec {
        let template = match style {
            Chain::Direct => IO,
            Chain::StepByStep => COT,
        };
        SampleSpec {
            prompt: render(template, &[("input", &self.input)]),
            stop: vec![],
            max_tokens: 1000,
            ..SampleSpec::default()
        }
    }

    /// A passage written without its label gets one.
    fn chain_state(&self, output: &str) -> String {
        if output.contains("Passage:") {
            output.trim().to_string()
        } else {
            format!("Passage:\n{}", output.trim())
        }
    }

    fn check(&self, state: &str) -> Check {
        let passage = passage_of(state);
        Check {
            answer: (!passage.is_empty()).then(|| passage.to_string()),
            correct: state.contains("Passage:") && endings_match(passage, &self.sentences),
            // The coherency score needs the model; the search fills it in.
            score: 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INPUT: &str =
        "It isn't difficult. It caught him off guard! People say \"pink.\" Who are you?";

    #[test]
    fn sentences_split() {
        assert_eq!(
            split_sentences(INPUT),
            [
                "It isn't difficult.",
                "It caught him off guard!",
                "People say \"pink.\"",
                "Who are you?"
            ]
        );
        assert!(Text::new("  ").is_err());
    }

    #[test]
    fn check_verifies_the_four_endings() {
        let t = Text::new(INPUT).unwrap();
        let state = t.extend("", "Plan:\n1. start");
        assert_eq!(state, "Plan:\n1. start");
        let good = "A. It isn't   difficult.\n\nB.\nIt caught him off guard!\n\n  \n\nC. People say \"pink.\"\n\nD. Who are you?\n";
        let state = t.extend(&state, good);
        assert!(state.starts_with("Plan:\n1. start\n\nPassage:\nA. It"));
        let c = t.check(&state);
        assert!(c.correct, "{state}");
        assert_eq!(c.score, 0.0);
        let swapped = "A. It caught him off guard!\n\nB. It isn't difficult.\n\nC. People say \"pink.\"\n\nD. Who are you?";
        assert!(!t.check(&t.extend("Plan: x", swapped)).correct);
        let three = "A. It isn't difficult.\n\nB. It caught him off guard!\n\nC. People say \"pink.\" Who are you?";
        assert!(!t.check(&t.extend("Plan: x", three)).correct);
        assert!(!t.check("Plan: no passage").correct);
    }

    #[test]
    fn scores_and_prompts() {
        assert_eq!(
            parse_score("Good flow.\nThus the coherency score is 7"),
            Some(7)
        );
        assert_eq!(
            parse_score("coherency score is 3... Thus the coherency score is 10."),
            Some(10)
        );
        assert_eq!(parse_score("Thus the coherency score is 11"), None);
        assert_eq!(parse_score("Thus the coherency score is {s}"), None);
        assert!(score_prompt("P").ends_with("integer from 1 to 10.\nP"));
        let t = Text::new(INPUT).unwrap();
        let outs: Vec<String> = vec![
            "the coherency score is 6".into(),
            "x".into(),
            "the coherency score is 9".into(),
        ];
        assert_eq!(t.value_of("", &outs), 7.5);
        let p = t.sample("Plan:\nmy plan", 1).prompt;
        assert!(p.contains("Follow this plan:\nmy plan\n") && p.ends_with("Passage:\n"));
        assert_eq!(t.sample("", 0).stop, ["Passage:"]);
        let v = t.vote(&["Plan:\na".into(), "Plan:\nb".into()], 1).prompt;
        assert!(v.contains("The best choice is {s}") && v.ends_with("Choice 2:\nPlan:\nb\n"));
    }
}
