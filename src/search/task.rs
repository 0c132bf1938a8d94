//! What a reasoning task gives the search: its prompts, how to read the
//! model's answers, and how to check a final answer.
//!
//! A state is the text of the thoughts so far (one thought per line group).
//! Prompts are plain user messages (with the model's answer so far, and a
//! follow-up message where a layout asks for one); the search renders them with
//! the model's chat template and sends each step to the engine as one batch
//! request.
//!
//! A `step` argument is the number of thoughts already in `state`: 0 at the
//! root, `steps() - 1` when asking for the last thought.

/// How thoughts are asked for at one step.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SampleSpec {
    /// The prompt (a user message); each of the k samples is one thought.
    pub prompt: String,
    /// The model's answer so far, which the samples continue: the prompt is
    /// the rendered user message followed by it (see [`Layout`]).
    pub response: String,
    /// A user message after `response`, which is then the model's finished
    /// turn: the samples answer this message. A call about a state asked as a
    /// follow-up turn begins with the tokens of the calls that made the state.
    pub follow_up: Option<String>,
    /// The start of the samples' answer, written for the model (a corrected
    /// calculation): the samples continue it, and their texts leave it out.
    pub answer_start: String,
    /// Strings that end one thought.
    pub stop: Vec<String>,
    pub max_tokens: usize,
}

crate::choice_enum!(
    /// Where a state's steps go in the prompts that extend it.
    pub Layout "layout" {
        /// Inside a new user message per call (the Tree of Thoughts layout).
        Separate = "separate",
        /// As the model's answer so far, so that the next step's prompt is
        /// the previous prompt and the step it produced, and a state's
        /// evaluation (and the final step) is a follow-up turn after it: the
        /// prefix cache reuses every token of the path (GSM8K; Blocksworld
        /// continues the plan from the initial state; other tasks keep theirs).
        Continue = "continue",
    }
);

/// How a chain of thought is asked for (`--method io|cot|cot-sc`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chain {
    /// The answer alone, after the task's examples (ToT's "standard" prompt).
    Direct,
    /// The whole solution step by step, then the answer.
    StepByStep,
}

/// A value the task's own rules give a state, without asking the model.
#[derive(Clone, Debug, PartialEq)]
pub struct Ruling {
    pub value: f64,
    /// Why, as shown in the tree.
    pub reason: String,
}

/// A generated text corrected by the task's rules: cut where it went wrong,
/// with the right text written in, for the model to continue.
#[derive(Clone, Debug, PartialEq)]
pub struct Correction {
    /// The text up to the mistake, corrected.
    pub start: String,
    /// What was corrected, as shown in the tree.
    pub note: String,
}

/// The result of checking a final state.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Check {
    /// The answer found in the state, if any.
    pub answer: Option<String>,
    pub correct: bool,
    /// A score for tasks graded on a scale (Creative Writing), else 1 or 0.
    pub score: f64,
}

pub trait Task {
    fn name(&self) -> &'static str;
    /// The problem as shown to a person.
    fn problem(&self) -> &str;
    /// Number of thought steps from the root to a final state.
    fn steps(&self) -> usize;

    /// `sample` generation: one prompt, k samples, each one next thought after `state`.
    fn sample(&self, state: &str, step: usize) -> SampleSpec;
    /// `propose` generation: one prompt whose answer lists several next thoughts.
    fn propose(&self, state: &str, step: usize) -> SampleSpec;
    /// Splits a `propose` answer into thoughts.
    fn parse_proposals(&self, state: &str, output: &str) -> Vec<String>;
    /// `enumerate` generation: every valid next thought, listed by the task's
    /// rules with no model call (RAP's Blocksworld actions); `None` where the
    /// task cannot list them.
    fn enumerate(&self, _state: &str) -> Option<Vec<String>> {
        None
    }
    /// Appends a thought to a state.
    fn extend(&self, state: &str, thought: &str) -> String {
        if state.is_empty() {
            thought.trim().to_string()
        } else {
            format!("{}\n{}", state, thought.trim())
        }
    }

    /// `value` evaluation: a prompt about one state, sampled n_evaluate times.
    fn value(&self, state: &str, step: usize) -> SampleSpec;
    /// The state's value from the sampled answers of its value prompt.
    fn value_of(&self, state: &str, outputs: &[String]) -> f64;
    /// `vote` evaluation: one prompt comparing the states, sampled n_evaluate times.
    fn vote(&self, states: &[String], step: usize) -> SampleSpec;
    /// Votes per state from the sampled answers of the vote prompt.
    fn votes(&self, states: &[String], outputs: &[String]) -> Vec<f64>;

    /// Checks a final state.
    fn check(&self, state: &str) -> Check;
    /// `rollout` evaluation: a prompt whose sample continues `state` to a
    /// whole solution (read with [`Task::chain_state`]); `None` where the
    /// task cannot.
    fn rollout(&self, _state: &str) -> Option<SampleSpec> {
        None
    }

    /// Checks a new thought against the task's rules before it joins the
    /// tree: the thought in canonical form, or why it is impossible.
    fn check_thought(&self, _state: &str, thought: &str) -> Result<String, String> {
        Ok(thought.trim().to_string())
    }
    /// A generated thought or chain whose mistake the task can correct (a
    /// wrong calculation: the task is the model's calculator), cut there;
    /// `None` where there is nothing to correct.
    fn correct(&self, _text: &str) -> Option<Correction> {
        None
    }
    /// Whether `state` answers the problem, so its path ends there.
    fn is_finished(&self, _state: &str) -> bool {
        false
    }
    /// The state's value where the task's rules decide it (a solved or failed
    /// final state, a step whose stated arithmetic is wrong); the model is not
    /// asked to evaluate such a state.
    fn ruling(&self, _state: &str) -> Option<Ruling> {
        None
    }
    /// Whether a right answer can still be reached from `state`, where the task
    /// can tell; it measures how well evaluation ranks states, nothing more.
    fn on_right_path(&self, _state: &str) -> Option<bool> {
        None
    }

    /// A single chain (`io`, `cot`, `cot-sc`): its prompt.
    fn chain(&self, style: Chain) -> SampleSpec;
    /// The final state a chain's output stands for.
    fn chain_state(&self, output: &str) -> String {
        output.trim().to_string()
    }
}
