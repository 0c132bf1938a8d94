//! GSM8K in the SeeD paper's setup: each thought is the next sub-question with
//! its answer ("Question: ...? Answer: ..."), one line, after worked examples
//! from the training split; states are valued by a 0-10 helpfulness rating.
//! A step that ends with "The answer is <number>" answers the problem and ends its
//! path (as RAP's final sub-question does); at the most steps the prompt asks
//! for that final step. A step whose stated arithmetic is wrong is worth 0.

use super::calc;
use super::{answer_so_far, numbers_in, parse_votes, render, vote_prompt};
use crate::search::task::{Chain, Check, Correction, Layout, Ruling, SampleSpec, Task};

const EXAMPLES: &str = include_str!("../../../prompts/gsm8k/examples.txt");
const THOUGHT: &str = include_str!("../../../prompts/gsm8k/thought.txt");
const FINAL: &str = include_str!("../../../prompts/gsm8k/final.txt");
const COT: &str = include_str!("../../../prompts/gsm8k/cot.txt");
const IO: &str = include_str!("../../../prompts/gsm8k/io.txt");
const VALUE: &str = include_str!("../../../prompts/gsm8k/value.txt");
const VALUE_FINAL: &str = include_str!("../../../prompts/gsm8k/value_final.txt");
const VOTE: &str = include_str!("../../../prompts/gsm8k/vote.txt");
// Follow-up turns after the chain of thought that wrote a state (`--layout continue`).
const FINAL_TURN: &str = include_str!("../../../prompts/gsm8k/final_turn.txt");
const VALUE_TURN: &str = include_str!("../../../prompts/gsm8k/value_turn.txt");
const VALUE_FINAL_TURN: &str = include_str!("../../../prompts/gsm8k/value_final_turn.txt");

/// The most sub-questions on a path unless the caller asks otherwise.
pub const DEFAULT_STEPS: usize = 5;

/// What a final step says before its number.
const ANSWER_MARK: &str = "the answer is";

pub struct Gsm8k {
    question: String,
    gold: String,
    steps: usize,
    layout: Layout,
}

impl Gsm8k {
    /// `gold` is the dataset's answer text (the number after `#### `) or the
    /// bare number; `steps` is the number of sub-questions, the last one final.
    pub fn new(question: &str, gold: &str, steps: usize) -> Self {
        Self {
            question: question.trim().to_string(),
            gold: gold_answer(gold).to_string(),
            steps: steps.max(1),
            layout: Layout::Separate,
        }
    }

    /// Lays out the prompts as `layout` says: `Continue` asks for each step
    /// but the last as the next line of the chain of thought's answer, and for
    /// the last step and every evaluation in a follow-up turn after it.
    pub fn with_layout(mut self, layout: Layout) -> Self {
        self.layout = layout;
        self
    }

    pub fn gold(&self) -> &str {
        &self.gold
    }

    /// A call about `state` as a follow-up turn after the chain of thought
    /// that wrote it, so that its tokens begin with the state's own; `None` in
    /// the separate layout or at the root.
    fn follow_up(&self, state: &str, message: String, max_tokens: usize) -> Option<SampleSpec> {
        let continued = self.layout == Layout::Continue && !state.trim().is_empty();
        continued.then(|| SampleSpec {
            response: state.trim().to_string(),
            follow_up: Some(message),
            stop: vec!["\n".into()],
            max_tokens,
            ..self.chain(Chain::StepByStep)
        })
    }

    fn steps_text(state: &str) -> &str {
        if state.trim().is_empty() {
            "(none yet)"
        } else {
            state.trim()
        }
    }
}

/// The gold answer of a GSM8K answer text: what follows its last `#### `.
pub fn gold_answer(answer: &str) -> &str {
    answer
        .rsplit_once("####")
        .map_or(answer, |(_, gold)| gold)
        .trim()
}

/// The answer of a final state: the number after its last "The answer is",
/// else its last number.
pub fn final_answer(text: &str) -> Option<f64> {
    stated_answer(text).or_else(|| numbers_in(text).last().copied())
}

/// The number right after the last "The answer is" in `text`, if any.
fn stated_answer(text: &str) -> Option<f64> {
    let lower = text.to_lowercase();
    let at = lower.rfind(ANSWER_MARK)? + ANSWER_MARK.len();
    let after = lower[at..].trim_start_matches([' ', ':', '$']);
    after
        .starts_with(|c: char| c.is_ascii_digit() || c == '-')
        .then(|| numbers_in(after).first().copied())
        .flatten()
}

/// Numeric equality, tolerant of float rounding (`2.50` == `2.5`).
pub fn same_number(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1.0)
}

/// A value output's rating: the first number in 0..=10 it contains.
pub fn parse_rating(output: &str) -> Option<f64> {
    numbers_in(output)
        .into_iter()
        .find(|v| (0.0..=10.0).contains(v))
}

/// The latest thought of a state: from its last "Question:" line to the end.
fn split_latest(state: &str) -> (&str, &str) {
    let state = state.trim();
    let at = state
        .match_indices("Question:")
        .map(|(i, _)| i)
        .filter(|&i| i == 0 || state[..i].ends_with('\n'))
        .last()
        .or_else(|| state.rfind('\n').map(|i| i + 1))
        .unwrap_or(0);
    (state[..at].trim(), state[at..].trim())
}

impl Task for Gsm8k {
    fn name(&self) -> &'static str {
        "gsm8k"
    }

    fn problem(&self) -> &str {
        &self.question
    }

    fn steps(&self) -> usize {
        self.steps
    }

    fn sample(&self, state: &str, step: usize) -> SampleSpec {
        let last = step + 1 >= self.steps;
        if self.layout == Layout::Continue && !last {
            return SampleSpec {
                response: answer_so_far(state),
                stop: vec!["\n".into()],
                max_tokens: 128,
                ..self.chain(Chain::StepByStep)
            };
        }
        let final_turn = last.then(|| self.follow_up(state, FINAL_TURN.to_string(), 128));
        if let Some(spec) = final_turn.flatten() {
            return spec;
        }
        let template = if last { FINAL } else { THOUGHT };
        let steps = match state.trim() {
            "" => "(none yet)\n".to_string(),
            s => format!("{s}\n"),
        };
        let vars = [
            ("examples", EXAMPLES),
            ("question", self.question.as_str()),
            ("steps", steps.as_str()),
        ];
        SampleSpec {
            prompt: render(template, &vars),
            // One thought is one line.
            stop: vec!["\n".into()],
            max_tokens: 128,
            ..SampleSpec::default()
        }
    }

    /// There is no list-style prompt in the paper's setup: a proposal is a sample.
    fn propose(&self, state: &str, step: usize) -> SampleSpec {
        self.sample(state, step)
    }

    /// Each "Question:" line starts a thought.
    fn parse_proposals(&self, _state: &str, output: &str) -> Vec<String> {
        let mut thoughts: Vec<String> = Vec::new();
        for line in output.lines().map(str::trim).filter(|l| !l.is_empty()) {
            match thoughts.last_mut() {
                Some(last) if !line.starts_with("Question:") => {
                    last.push('\n');
                    last.push_str(line);
                }
                _ => thoughts.push(line.to_string()),
            }
        }
        thoughts
    }

    /// An open state is rated for its latest step's help; a finished one for
    /// whether it answers the whole problem (a step may state "The answer is"
    /// for an intermediate amount).
    fn value(&self, state: &str, _step: usize) -> SampleSpec {
        let finished = self.is_finished(state);
        let (before, latest) = split_latest(state);
        // The follow-up does not restate the latest step: it ends the turn
        // just before, and every token restated is computed again per state.
        let turn = match finished {
            true => VALUE_FINAL_TURN,
            false => VALUE_TURN,
        };
        if let Some(spec) = self.follow_up(state, turn.to_string(), 16) {
            return spec;
        }
        if finished {
            let vars = [
                ("question", self.question.as_str()),
                ("steps", state.trim()),
            ];
            return SampleSpec {
                prompt: render(VALUE_FINAL, &vars),
                stop: vec!["\n".into()],
                max_tokens: 16,
                ..SampleSpec::default()
            };
        }
        let vars = [
            ("question", self.question.as_str()),
            ("steps", Self::steps_text(before)),
            ("latest", latest),
        ];
        SampleSpec {
            prompt: render(VALUE, &vars),
            stop: vec!["\n".into()],
            max_tokens: 16,
            ..SampleSpec::default()
        }
    }

    /// The mean rating over the samples that gave one; 0 when none did.
    fn value_of(&self, _state: &str, outputs: &[String]) -> f64 {
        let ratings: Vec<f64> = outputs.iter().filter_map(|o| parse_rating(o)).collect();
        if ratings.is_empty() {
            0.0
        } else {
            ratings.iter().sum::<f64>() / ratings.len() as f64
        }
    }

    fn vote(&self, states: &[String], _step: usize) -> SampleSpec {
        SampleSpec {
            prompt: vote_prompt(&render(VOTE, &[("question", &self.question)]), states),
            stop: vec![],
            max_tokens: 300,
            ..SampleSpec::default()
        }
    }

    fn votes(&self, states: &[String], outputs: &[String]) -> Vec<f64> {
        parse_votes(outputs, states.len())
    }

    fn is_finished(&self, state: &str) -> bool {
        stated_answer(split_latest(state).1).is_some()
    }

    /// The latest step's stated arithmetic, where it is wrong.
    fn ruling(&self, state: &str) -> Option<Ruling> {
        calc::first_wrong(split_latest(state).1).map(|wrong| Ruling {
            value: 0.0,
            reason: wrong.to_string(),
        })
    }

    /// The text up to its first wrong calculation, with the right result.
    fn correct(&self, text: &str) -> Option<Correction> {
        let wrong = calc::first_wrong(text)?;
        Some(Correction {
            start: wrong.corrected(text),
            note: format!(
                "calculator: {} corrected to {}",
                wrong.written,
                calc::format_value(wrong.value)
            ),
        })
    }

    /// A finished state is on a right path when its answer is right.
    fn on_right_path(&self, state: &str) -> Option<bool> {
        self.is_finished(state).then(|| self.check(state).correct)
    }

    fn chain(&self, style: Chain) -> SampleSpec {
        let (template, max_tokens) = match style {
            Chain::Direct => (IO, 24),
            Chain::StepByStep => (COT, 400),
        };
        let vars = [("examples", EXAMPLES), ("question", self.question.as_str())];
        SampleSpec {
            prompt: render(template, &vars),
            stop: ["\nExample problem:", "\nNow the problem", "\nProblem:"]
                .map(String::from)
                .to_vec(),
            max_tokens,
            ..SampleSpec::default()
        }
    }

    /// The rest of the chain of thought, continuing the steps so far as the
    /// model's own answer (the `continue` layout only: in `separate` the
    /// steps are not the model's answer).
    fn rollout(&self, state: &str) -> Option<SampleSpec> {
        (self.layout == Layout::Continue).then(|| SampleSpec {
            response: answer_so_far(state),
            ..self.chain(Chain::StepByStep)
        })
    }

    /// The chain up to its first line that states the answer.
    fn chain_state(&self, output: &str) -> String {
        let lines: Vec<&str> = output.trim().lines().collect();
        let end = lines
            .iter()
            .position(|l| stated_answer(l).is_some())
            .map_or(lines.len(), |i| i + 1);
        lines[..end].join("\n")
    }

    fn check(&self, state: &str) -> Check {
        let answer = final_answer(state);
        let gold = final_answer(&self.gold);
        let correct = matches!((answer, gold), (Some(a), Some(g)) if same_number(a, g));
        Check {
            answer: answer.map(|a| a.to_string()),
            correct,
            score: if correct { 1.0 } else { 0.0 },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn answers_compare_numerically() {
        let t = Gsm8k::new("q", "She makes 9 * 2 = $18.\n#### 1,234", 4);
        assert_eq!(t.gold(), "1,234");
        assert!(t.check("Question: How much? Answer: 1234").correct);
        assert!(t.check("Question: How much? Answer: $1,234.").correct);
        assert!(t.check("Answer: 1,234.00 dollars").correct);
        assert!(!t.check("Answer: 1,234 and then 5").correct);
        let t = Gsm8k::new("q", "#### 2.5", 4);
        let c = t.check("Question: Price? Answer: $2.50.");
        assert!(c.correct);
        assert_eq!(c.answer.as_deref(), Some("2.5"));
        let t = Gsm8k::new("q", "-3", 4);
        assert!(t.check("Answer: the change is -3.").correct);
        assert!(!t.check("Answer: 10-3").correct);
        assert!(!t.check("no number here").correct);
        assert_eq!(t.check("nothing").answer, None);
    }

    #[test]
    fn ratings_take_the_first_number_up_to_ten() {
        assert_eq!(parse_rating("8/10, helpful"), Some(8.0));
        assert_eq!(parse_rating("Rating: 15 ... I mean 7"), Some(7.0));
        assert_eq!(parse_rating("very helpful"), None);
        let t = Gsm8k::new("q", "#### 1", 4);
        assert_eq!(t.value_of("", &outs(&["8", "6 out of 10", "great"])), 7.0);
        assert_eq!(t.value_of("", &outs(&["great"])), 0.0);
    }

    #[test]
    fn prompts_show_the_steps_and_the_latest_one() {
        let t = Gsm8k::new("How many eggs?", "#### 9", 3);
        let first = t.sample("", 0).prompt;
        assert!(first.contains(
            "solve: How many eggs?\nSteps so far:\n(none yet)\nWrite only the next step"
        ));
        assert!(
            first.contains("Example problem: Weng earns $12"),
            "train examples"
        );
        let later = t.sample("Question: a? Answer: 1", 1).prompt;
        assert!(later.contains(
            "How many eggs?\nSteps so far:\nQuestion: a? Answer: 1\nWrite only the next"
        ));
        assert!(t
            .sample("Question: a? Answer: 1", 2)
            .prompt
            .contains("Write only the last step"));
        let state = "Question: a? Answer: 1\nQuestion: b?\nAnswer: 2";
        let p = t.value(state, 2).prompt;
        assert!(p.contains("Steps so far:\nQuestion: a? Answer: 1\n"));
        assert!(p.contains("Latest step:\nQuestion: b?\nAnswer: 2\n"));
        assert_eq!(
            t.parse_proposals("", "Question: a? Answer: 1\n\nQuestion: b?\nAnswer: 2\n"),
            outs(&["Question: a? Answer: 1", "Question: b?\nAnswer: 2"])
        );
        assert_eq!(t.steps(), 3);
    }

    #[test]
    fn a_step_that_states_the_answer_finishes_the_path() {
        let t = Gsm8k::new("How many clips?", "#### 72", 5);
        let first = "Question: How many in May? Answer: 48 / 2 = 24 clips.";
        assert!(!t.is_finished(first));
        let done =
            format!("{first}\nQuestion: How many in all? Answer: 48 + 24 = 72. The answer is 72.");
        assert!(t.is_finished(&done));
        assert_eq!(t.on_right_path(&done), Some(true));
        assert_eq!(t.on_right_path(first), None);
        // Only the latest step counts, and "the answer is" needs its number.
        assert!(!t.is_finished(&format!("{done}\nQuestion: And June? Answer: 5")));
        assert!(!t.is_finished("Question: x? Answer: the answer is unclear, 3 left"));
        assert!(t.is_finished("Question: x? Answer: So the answer is: $1,250."));
        let wrong = "Question: How many in all? Answer: 48 + 24 = 70. The answer is 70.";
        assert_eq!(t.on_right_path(wrong), Some(false));
        // A finished state is valued on whether it answers the whole problem.
        assert!(t
            .value(&done, 1)
            .prompt
            .contains("How many clips?\nSolution:\nQuestion: How many in May?"));
        assert!(t
            .value(first, 0)
            .prompt
            .contains("Latest step:\nQuestion: How many in May?"));
        assert_eq!(final_answer("The answer is 72. Then 5 more."), Some(72.0));
        let chain =
            "Question: a? Answer: 2 * 3 = 6. The answer is 6.\nQuestion: b? The answer is 9.";
        assert_eq!(
            t.chain_state(chain),
            "Question: a? Answer: 2 * 3 = 6. The answer is 6."
        );
    }

    #[test]
    fn a_wrong_calculation_counts_against_its_state() {
        let t = Gsm8k::new("q", "#### 72", 5);
        let ruled = t.ruling("Question: a? Answer: 2 * 3 = 6\nQuestion: b? Answer: 6 + 1 = 8");
        assert_eq!(ruled.map(|r| r.value), Some(0.0));
        assert_eq!(t.ruling("Question: b? Answer: 6 + 1 = 7"), None);
        // An earlier step was judged when it was new.
        assert_eq!(
            t.ruling("Question: a? Answer: 2 * 3 = 5\nQuestion: b? Answer: 5"),
            None
        );
    }

    #[test]
    fn continued_steps_extend_the_previous_prompt_and_its_step() {
        let t = Gsm8k::new("How many clips?", "#### 72", 3).with_layout(Layout::Continue);
        let whole = |spec: SampleSpec| spec.prompt + &spec.response;
        let first = whole(t.sample("", 0));
        assert_eq!(first, t.chain(Chain::StepByStep).prompt);
        let step = "Question: How many in May? Answer: 48 / 2 = 24.";
        let second = whole(t.sample(step, 1));
        assert!(second.starts_with(&format!("{first}{step}")), "{second}");
        assert!(second.ends_with('\n'));
        // The last step and every evaluation are follow-up turns after the
        // chain of thought that wrote the state.
        let state = format!("{step}\nQuestion: How many in June? Answer: 24 - 4 = 20.");
        let turn = |spec: SampleSpec| (spec.prompt, spec.response, spec.follow_up.unwrap());
        let (prompt, response, ask) = turn(t.sample(&state, 2));
        assert_eq!(
            (prompt.as_str(), response.as_str()),
            (first.as_str(), state.as_str())
        );
        assert!(ask.starts_with("Write only the last step"), "{ask}");
        let (prompt, response, ask) = turn(t.value(&state, 2));
        assert_eq!(
            (prompt.as_str(), response.as_str()),
            (first.as_str(), state.as_str())
        );
        // It rates the step that ends the turn before, without restating it.
        assert!(ask.starts_with("How helpful is your latest step"), "{ask}");
        assert!(!ask.contains("June"), "{ask}");
        let done = format!("{state}\nQuestion: In all? Answer: 48 + 20 = 68. The answer is 68.");
        let (_, response, ask) = turn(t.value(&done, 3));
        assert_eq!(response, done);
        assert!(ask.starts_with("Does your solution answer"), "{ask}");
        // At the root there is no turn to follow: the prompts of their own stay.
        assert!(Gsm8k::new("q", "1", 1)
            .with_layout(Layout::Continue)
            .sample("", 0)
            .follow_up
            .is_none());
        let separate = Gsm8k::new("How many clips?", "#### 72", 3);
        let spec = separate.sample(step, 1);
        assert!(spec.response.is_empty() && spec.prompt.contains(step));
        assert!(separate.value(&state, 2).follow_up.is_none());
        assert!(separate
            .sample(&state, 2)
            .prompt
            .contains("Write only the last step"));
    }
}
