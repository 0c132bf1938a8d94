//! Game of 24 with Tree of Thoughts' prompts: propose the next arithmetic
//! steps, value states as sure / likely / impossible. Every step is checked
//! and replayed in exact rational arithmetic (`steps`): an impossible step is
//! invalid, the numbers left are computed, and a path ends when one number is
//! left; the answer expression is built from the steps, not asked for.

mod arith;
mod steps;

pub use arith::{check_expression, Invalid};
pub use steps::{Pool, StepError};

use anyhow::{bail, Result};

use super::{parse_votes, render, vote_prompt};
use crate::search::task::{Chain, Check, Ruling, SampleSpec, Task};

const PROPOSE: &str = include_str!("../../../../prompts/game24/propose.txt");
const VALUE: &str = include_str!("../../../../prompts/game24/value.txt");
const COT: &str = include_str!("../../../../prompts/game24/cot.txt");
const IO: &str = include_str!("../../../../prompts/game24/io.txt");
const VOTE: &str = include_str!("../../../../prompts/game24/vote.txt");

/// ToT's (ad hoc) value of each verdict; a state's value sums them over samples.
const VERDICTS: [(&str, f64); 3] = [("sure", 20.0), ("likely", 1.0), ("impossible", 0.001)];

/// The ruled value of a state that reached 24: above any sum of verdicts a
/// handful of samples can give.
const SOLVED: f64 = 1000.0;

pub struct Game24 {
    input: String,
    numbers: Vec<i64>,
}

impl Game24 {
    /// `input` is four numbers separated by spaces, e.g. "4 9 10 13".
    pub fn new(input: &str) -> Result<Self> {
        let numbers = input
            .split_whitespace()
            .map(|w| w.parse::<i64>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| anyhow::anyhow!("a Game of 24 input is four integers, got '{input}'"))?;
        if numbers.len() != 4 {
            bail!("a Game of 24 input is four integers, got '{input}'");
        }
        Ok(Self {
            input: input.split_whitespace().collect::<Vec<_>>().join(" "),
            numbers,
        })
    }

    /// The numbers left after the state's steps (the search only builds
    /// states of valid steps; anything else leaves the inputs).
    fn pool(&self, state: &str) -> Pool {
        Pool::replay(&self.numbers, state).unwrap_or_else(|_| Pool::start(&self.numbers))
    }

    fn current_numbers(&self, state: &str) -> String {
        self.pool(state).describe()
    }

    fn cot_prompt(&self, state: &str) -> String {
        let mut prompt = render(COT, &[("input", &self.input)]);
        prompt.push_str("Steps:\n");
        if !state.trim().is_empty() {
            prompt.push_str(state.trim());
            prompt.push('\n');
        }
        prompt
    }
}

impl Task for Game24 {
    fn name(&self) -> &'static str {
        "game24"
    }

    fn problem(&self) -> &str {
        &self.input
    }

    /// Three steps combine four numbers into one.
    fn steps(&self) -> usize {
        3
    }

    /// ToT's sample mode: the chain-of-thought prompt, one line per thought.
    fn sample(&self, state: &str, _step: usize) -> SampleSpec {
        SampleSpec {
            prompt: self.cot_prompt(state),
            stop: vec!["\n".into()],
            max_tokens: 60,
            ..SampleSpec::default()
        }
    }

    /// Proposes next steps from the numbers left. The answer begins by
    /// repeating the example's header, so that the (chat) target goes on with
    /// the list in its format, not a preamble, a numbered markdown list or a
    /// Python program; it stops before a next "Input:".
    fn propose(&self, state: &str, _step: usize) -> SampleSpec {
        let numbers = self.current_numbers(state);
        let prompt = render(PROPOSE, &[("input", &numbers)]);
        SampleSpec {
            response: format!("Input: {numbers}\nPossible next steps:\n"),
            prompt: prompt.trim_end().to_string(),
            stop: vec!["Input:".into()],
            max_tokens: 200,
            ..SampleSpec::default()
        }
    }

    /// Every line that reads as a step; `check_thought` judges it.
    fn parse_proposals(&self, _state: &str, output: &str) -> Vec<String> {
        output
            .lines()
            .map(strip_bullet)
            .filter(|line| steps::parse(line).is_some())
            .map(str::to_string)
            .collect()
    }

    fn check_thought(&self, state: &str, thought: &str) -> Result<String, String> {
        let step =
            steps::parse(strip_bullet(thought)).ok_or_else(|| StepError::NotAStep.to_string())?;
        self.pool(state).apply(&step).map_err(|e| e.to_string())
    }

    fn is_finished(&self, state: &str) -> bool {
        !state.trim().is_empty() && self.pool(state).last().is_some()
    }

    /// One number left: solved if it is 24, else worth nothing.
    fn ruling(&self, state: &str) -> Option<Ruling> {
        if state.trim().is_empty() {
            return None;
        }
        let pool = self.pool(state);
        let (value, _) = pool.last()?;
        Some(if *value == arith::Frac::int(24) {
            Ruling {
                value: SOLVED,
                reason: "reaches 24".into(),
            }
        } else {
            Ruling {
                value: 0.0,
                reason: format!("ends at {}, not 24", value.written()),
            }
        })
    }

    fn on_right_path(&self, state: &str) -> Option<bool> {
        Some(self.pool(state).solvable())
    }

    /// ToT's value prompt with examples of two numbers left added; the answer
    /// begins with the numbers, as in the examples, so that the (chat) target
    /// writes its calculations and a verdict rather than prose.
    fn value(&self, state: &str, _step: usize) -> SampleSpec {
        let numbers = self.current_numbers(state);
        SampleSpec {
            response: format!("{numbers}\n"),
            prompt: render(VALUE, &[("input", &numbers)]).trim_end().to_string(),
            stop: vec![],
            max_tokens: 120,
            ..SampleSpec::default()
        }
    }

    fn value_of(&self, _state: &str, outputs: &[String]) -> f64 {
        // A fold from +0.0: an empty f64 sum is -0.0.
        outputs
            .iter()
            .filter_map(|o| verdict(o))
            .fold(0.0, |sum, v| sum + v)
    }

    fn vote(&self, states: &[String], _step: usize) -> SampleSpec {
        SampleSpec {
            prompt: vote_prompt(&render(VOTE, &[("input", &self.input)]), states),
            stop: vec![],
            max_tokens: 300,
            ..SampleSpec::default()
        }
    }

    fn votes(&self, states: &[String], outputs: &[String]) -> Vec<f64> {
        parse_votes(outputs, states.len())
    }

    /// ToT's standard (`io`) and chain-of-thought prompts.
    fn chain(&self, style: Chain) -> SampleSpec {
        let prompt = match style {
            Chain::Direct => render(IO, &[("input", &self.input)]),
            Chain::StepByStep => self.cot_prompt(""),
        };
        SampleSpec {
            prompt,
            stop: vec!["\nInput:".into()],
            max_tokens: 200,
            ..SampleSpec::default()
        }
    }

    /// The chain up to its answer line.
    fn chain_state(&self, output: &str) -> String {
        let lines: Vec<&str> = output.trim().lines().collect();
        let end = lines
            .iter()
            .position(|l| strip_answer_label(l).len() < l.trim().len())
            .map_or(lines.len(), |i| i + 1);
        lines[..end].join("\n")
    }

    /// A state ending in an "Answer:" line (a chain) is checked by that
    /// expression; a search state by the expression its steps build.
    fn check(&self, state: &str) -> Check {
        let last = state.trim().lines().last().unwrap_or("");
        let expr = if strip_answer_label(last).len() < last.trim().len() {
            let expr = strip_answer_label(last);
            expr.split('=').next().unwrap_or("").trim().to_string()
        } else {
            let pool = self.pool(state);
            let built = pool.last().filter(|_| self.is_finished(state));
            built.map_or(String::new(), |(_, e)| strip_outer(e).to_string())
        };
        let correct = check_expression(&expr, &self.numbers).is_ok();
        Check {
            answer: (!expr.is_empty()).then_some(expr),
            correct,
            score: if correct { 1.0 } else { 0.0 },
        }
    }
}

/// An expression without its outermost parentheses.
fn strip_outer(expr: &str) -> &str {
    expr.strip_prefix('(')
        .and_then(|e| e.strip_suffix(')'))
        .unwrap_or(expr)
}

/// The verdict on a value output's last non-empty line, as ToT's value.
fn verdict(output: &str) -> Option<f64> {
    let last = output.trim().lines().last()?.to_lowercase();
    // The last verdict word on the line wins ("not impossible, likely").
    VERDICTS
        .iter()
        .filter_map(|(word, value)| last.rfind(word).map(|at| (at, *value)))
        .max_by_key(|(at, _)| *at)
        .map(|(_, value)| value)
}

fn strip_answer_label(line: &str) -> &str {
    let line = line.trim();
    match line.get(..7) {
        Some(head) if head.eq_ignore_ascii_case("answer:") => line[7..].trim(),
        _ => line,
    }
}

/// Drops list markers a chat model may put around a line ("1. ", "- ", "* ",
/// markdown emphasis: "1. **4 + 5 = 9 (left: 6 9 10)**").
fn strip_bullet(line: &str) -> &str {
    let line = line.trim();
    let digits = line.trim_start_matches(|c: char| c.is_ascii_digit());
    let numbered = (digits.len() < line.len())
        .then(|| {
            digits
                .strip_prefix(". ")
                .or_else(|| digits.strip_prefix(") "))
        })
        .flatten();
    let line = numbered
        .or_else(|| line.strip_prefix("- "))
        .or_else(|| line.strip_prefix("* "))
        .unwrap_or(line);
    line.trim().trim_matches(|c| c == '*' || c == '`').trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(input: &str) -> Game24 {
        Game24::new(input).unwrap()
    }

    #[test]
    fn valid_expressions() {
        let ok = |e: &str, n: &[i64]| check_expression(e, n);
        assert_eq!(ok("8/(3-8/3)", &[3, 3, 8, 8]), Ok(()));
        assert_eq!(ok("(4 + 8) * (6 - 4)", &[4, 4, 6, 8]), Ok(()));
        assert_eq!(ok("(1 + 8 / 4) * 8", &[1, 4, 8, 8]), Ok(()));
        assert_eq!(ok("((5 + 5) + 5) + 9", &[5, 5, 5, 9]), Ok(()));
        assert_eq!(ok("2 × 12 × (10 − 9)", &[2, 9, 10, 12]), Ok(()));
    }

    #[test]
    fn invalid_expressions() {
        let err = |e: &str, n: &[i64]| check_expression(e, n).unwrap_err();
        assert!(matches!(
            err("(4 + 8) * (6 - 3)", &[4, 4, 6, 8]),
            Invalid::WrongNumbers { .. }
        ));
        // A number used twice, and one input left out.
        assert!(matches!(
            err("4 * 6 * (8 / 8)", &[4, 6, 8, 1]),
            Invalid::WrongNumbers { .. }
        ));
        assert!(matches!(
            err("4 * 6", &[4, 6, 8, 1]),
            Invalid::WrongNumbers { .. }
        ));
        assert_eq!(
            err("24 / (4 - 4) + 6 * 0", &[24, 4, 4, 6]),
            Invalid::DivisionByZero
        );
        assert_eq!(
            err("(4 + 8) * (6 - 4) + 1", &[4, 4, 6, 8]),
            Invalid::WrongNumbers {
                used: vec![1, 4, 4, 6, 8],
                inputs: vec![4, 4, 6, 8]
            }
        );
        assert_eq!(
            err("4 + 4 + 6 + 8", &[4, 4, 6, 8]),
            Invalid::NotTwentyFour("22".into())
        );
        assert!(matches!(
            err("(4 + 8 * (6 - 4)", &[4, 4, 6, 8]),
            Invalid::Syntax(_)
        ));
        assert!(matches!(err("-4 + 28", &[4, 28]), Invalid::Syntax(_)));
        assert!(matches!(err("", &[]), Invalid::Syntax(_)));
        assert!(matches!(
            err("4 4 + 6 8", &[4, 4, 6, 8]),
            Invalid::Syntax(_)
        ));
        assert!(matches!(
            err("99999999999999999999 * 1", &[1]),
            Invalid::Overflow
        ));
        assert_eq!(
            err("3 * 8 / 3 * 8 / 8", &[3, 3, 8, 8]).to_string(),
            "uses [3, 3, 8, 8, 8], not exactly the inputs [3, 3, 8, 8]"
        );
        assert_eq!(
            err("8 / 3 + 8 + 3", &[3, 3, 8, 8]),
            Invalid::NotTwentyFour("41/3".into())
        );
    }

    #[test]
    fn check_reads_the_answer_line() {
        let t = task("4 9 10 13");
        let state = "13 - 10 = 3 (left: 3 4 9)\n9 - 3 = 6 (left: 4 6)\n4 * 6 = 24 (left: 24)\nAnswer: 4 * (9 - (13 - 10)) = 24";
        let c = t.check(state);
        assert!(c.correct && c.score == 1.0);
        assert_eq!(c.answer.as_deref(), Some("4 * (9 - (13 - 10))"));
        let c = t.check("answer: (13 - 9) * (10 - 4) = 24");
        assert!(c.correct);
        assert!(!t.check("Answer: 4 * 6 = 24").correct);
        assert!(!t.check("").correct);
        assert!(Game24::new("1 2 3").is_err() && Game24::new("1 2 x 4").is_err());
    }

    #[test]
    fn proposals_are_parsed_from_lines_and_checked() {
        let t = task("2 8 8 14");
        let out = "Possible next steps:\n2 + 8 = 10 (left: 8 10 14)\n1. 8 / 2 = 4 (left: 4 8 14)\n- 14 /  2 = 7 (left: 7 8 8)\nsome chatter\n2 + = 10 (left: 8)\n14 - 8 = 6\n2. **2 * 8 = 16 (left: 8 14 16)**";
        assert_eq!(
            t.parse_proposals("", out),
            vec![
                "2 + 8 = 10 (left: 8 10 14)",
                "8 / 2 = 4 (left: 4 8 14)",
                "14 /  2 = 7 (left: 7 8 8)",
                "14 - 8 = 6",
                "2 * 8 = 16 (left: 8 14 16)"
            ]
        );
        assert_eq!(
            t.check_thought("", "14 - 8 = 6"),
            Ok("14 - 8 = 6 (left: 2 6 8)".into())
        );
        assert_eq!(
            t.check_thought("14 - 8 = 6 (left: 2 6 8)", "6 - 8 = 2 (left: 2 2)"),
            Err("6 - 8 is -2, not 2".into())
        );
        let state = "2 * 8 = 16 (left: 8 14 16)\n14 - 8 = 6 (left: 6 16)\n16 + 6 = 22 (left: 22)";
        assert_eq!(t.current_numbers(state), "22");
        assert!(t.is_finished(state) && !t.is_finished("2 * 8 = 16 (left: 8 14 16)"));
        assert_eq!(t.ruling(state).map(|r| r.value), Some(0.0));
        assert!(t
            .propose("", 0)
            .prompt
            .ends_with("Input: 2 8 8 14\nPossible next steps:"));
        assert!(t
            .propose("2 + 8 = 10 (left: 8 10 14)", 1)
            .prompt
            .ends_with("Input: 8 10 14\nPossible next steps:"));
        let spec = t.propose("2 + 8 = 10 (left: 8 10 14)", 1);
        assert_eq!(spec.response, "Input: 8 10 14\nPossible next steps:\n");
        assert_eq!(spec.stop, vec!["Input:".to_string()]);
    }

    #[test]
    fn a_state_with_one_number_left_is_judged_by_the_task() {
        let t = task("2 8 8 14");
        let solved = "8 / 2 = 4 (left: 4 8 14)\n14 - 8 = 6 (left: 4 6)\n4 * 6 = 24 (left: 24)";
        assert!(t.is_finished(solved));
        assert_eq!(t.ruling(solved).map(|r| r.value), Some(SOLVED));
        let c = t.check(solved);
        assert!(c.correct);
        assert_eq!(c.answer.as_deref(), Some("(8 / 2) * (14 - 8)"));
        assert_eq!(t.on_right_path("8 / 2 = 4 (left: 4 8 14)"), Some(true));
        assert_eq!(t.on_right_path("2 + 8 = 10 (left: 8 10 14)"), Some(false));
        assert_eq!(t.ruling("8 / 2 = 4 (left: 4 8 14)"), None);
    }

    #[test]
    fn chains_end_at_their_answer_line() {
        let t = task("4 9 10 13");
        let out = "13 - 10 = 3 (left: 3 4 9)\n9 - 3 = 6 (left: 4 6)\n4 * 6 = 24 (left: 24)\nAnswer: 4 * (9 - (13 - 10)) = 24\nmore chatter";
        let state = t.chain_state(out);
        assert!(state.ends_with("Answer: 4 * (9 - (13 - 10)) = 24"));
        assert!(t.check(&state).correct);
        assert!(t
            .chain(Chain::Direct)
            .prompt
            .ends_with("Input: 4 9 10 13\n"));
        assert!(t
            .chain(Chain::StepByStep)
            .prompt
            .ends_with("Input: 4 9 10 13\nSteps:\n"));
    }

    #[test]
    fn values_follow_tot() {
        let t = task("2 8 8 14");
        let outs = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let state = "2 + 8 = 10 (left: 8 10 14)";
        let spec = t.value(state, 1);
        assert!(spec
            .prompt
            .ends_with("1 3 3 are all too small\nimpossible\n8 10 14"));
        assert_eq!(spec.response, "8 10 14\n");
        let v = t.value_of(
            state,
            &outs(&[
                "8 + 10 = 18\nlikely",
                "sure",
                "reasoning\nImpossible.\n",
                "no verdict",
            ]),
        );
        assert!((v - 21.001).abs() < 1e-9, "{v}");
        let unjudged = t.value_of(state, &outs(&["no verdict"]));
        assert!(unjudged == 0.0 && unjudged.is_sign_positive());
    }
}
