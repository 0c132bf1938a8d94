//! Blocksworld (PlanBench, RAP split): the task. Beside it: a PDDL parser for
//! the domain and its instances (`pddl`), a simulator that applies the
//! domain's own action schemas (`world`), and the English that PlanBench and
//! RAP use for states and actions (`english`).
//!
//! A thought is one action, checked by the simulator: an action whose
//! preconditions fail is invalid, and a path ends when the goal holds. The
//! value of a state combines the model's good/bad verdicts (RAP's
//! self-evaluation prompt) with a free signal from the simulator: each
//! satisfied goal atom adds to the value, which separates equally rated states.

mod english;
mod pddl;
mod world;

pub use english::{describe_goal, describe_state, object_name, Action, COLOURS};
pub use pddl::{Domain, Fact, Problem, Schema};
pub use world::Simulation;

use std::collections::BTreeSet;

use super::{answer_so_far, parse_votes, render, vote_prompt};
use crate::search::task::{Chain, Check, Layout, Ruling, SampleSpec, Task};

const ICL: &str = include_str!("../../../../prompts/blocksworld/icl.txt");
const SELF_EVAL: &str = include_str!("../../../../prompts/blocksworld/self_eval.txt");
const VOTE: &str = include_str!("../../../../prompts/blocksworld/vote.txt");

/// Where the examples' plans begin.
const PLAN: &str = "[PLAN]";

/// The ruled value of a state where the goal holds: above any model value
/// (at most 1 for the verdicts plus 1 for the goal atoms).
const SOLVED: f64 = 3.0;

pub struct Blocksworld {
    domain: Domain,
    problem: Problem,
    steps: usize,
    description: String,
    layout: Layout,
}

impl Blocksworld {
    pub fn new(domain: Domain, problem: Problem, steps: usize) -> Self {
        let description = format!(
            "As initial conditions I have that, {}\nMy goal is to {}",
            describe_state(&problem.init),
            describe_goal(&problem.goal)
        );
        Self {
            domain,
            problem,
            steps: steps.max(1),
            description,
            layout: Layout::Separate,
        }
    }

    /// Lays out the action prompts as `layout` says: `Continue` asks for the
    /// next action as the next line of the plan the model is writing from the
    /// initial state (RAP's separate layout restates the state reached).
    pub fn with_layout(mut self, layout: Layout) -> Self {
        self.layout = layout;
        self
    }

    /// Simulates each non-empty line of `plan` as one action.
    pub fn simulate(&self, plan: &str) -> Simulation {
        world::simulate(&self.domain, &self.problem, plan)
    }

    fn goals_met(&self, state: &BTreeSet<Fact>) -> usize {
        self.problem
            .goal
            .iter()
            .filter(|g| state.contains(g))
            .count()
    }

    fn goal_text(&self) -> String {
        describe_goal(&self.problem.goal)
    }
}

impl Task for Blocksworld {
    fn name(&self) -> &'static str {
        "blocksworld"
    }

    fn problem(&self) -> &str {
        &self.description
    }

    fn steps(&self) -> usize {
        self.steps
    }

    /// RAP's few-shot plans, then the current state and the goal; the model
    /// writes the next action as the plan's first line. Continued, the state
    /// is the initial one and the plan so far is the model's answer.
    /// The next action, as the next line of a plan: the model's answer begins
    /// with the examples' "[PLAN]" (and, continued, the plan so far), so that
    /// the (chat) target writes actions, not a comment on the request.
    fn sample(&self, state: &str, _step: usize) -> SampleSpec {
        let (from, plan) = match self.layout {
            Layout::Separate => (self.simulate(state).state, String::new()),
            Layout::Continue => (self.problem.init.clone(), answer_so_far(state)),
        };
        let prompt = render(
            ICL,
            &[
                ("state", &describe_state(&from)),
                ("goal", &self.goal_text()),
            ],
        );
        let request = prompt.trim_end().trim_end_matches(PLAN).trim_end();
        SampleSpec {
            response: format!("{PLAN}\n{plan}"),
            prompt: request.to_string(),
            stop: vec!["\n".into()],
            max_tokens: 32,
            ..SampleSpec::default()
        }
    }

    fn propose(&self, state: &str, step: usize) -> SampleSpec {
        SampleSpec {
            stop: vec!["[PLAN END]".into()],
            max_tokens: 160,
            ..self.sample(state, step)
        }
    }

    /// Every line that reads as an action, in canonical wording.
    fn parse_proposals(&self, _state: &str, output: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for line in output.lines() {
            if let Ok(a) = Action::parse(line, &self.problem.objects) {
                let text = a.to_text();
                if !out.contains(&text) {
                    out.push(text);
                }
            }
        }
        out
    }

    /// Actions are kept in canonical wording, so states compare equal.
    fn extend(&self, state: &str, thought: &str) -> String {
        let line = thought
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("");
        let line = Action::parse(line, &self.problem.objects)
            .map_or_else(|_| line.to_string(), |a| a.to_text());
        if state.trim().is_empty() {
            line
        } else {
            format!("{}\n{}", state.trim(), line)
        }
    }

    /// RAP's self-evaluation: is the latest action good in the state before it?
    fn value(&self, state: &str, _step: usize) -> SampleSpec {
        let state = state.trim();
        let (before, last) = state.rsplit_once('\n').unwrap_or(("", state));
        let now = describe_state(&self.simulate(before).state);
        SampleSpec {
            prompt: render(
                SELF_EVAL,
                &[
                    ("state", &now),
                    ("goal", &self.goal_text()),
                    ("action", last.trim()),
                ],
            ),
            stop: vec!["\n".into()],
            max_tokens: 8,
            ..SampleSpec::default()
        }
    }

    /// Share of "good" verdicts plus the share of goal atoms that hold;
    /// 0 for a plan with an impossible or unreadable action.
    fn value_of(&self, state: &str, outputs: &[String]) -> f64 {
        let sim = self.simulate(state);
        if sim.error.is_some() {
            return 0.0;
        }
        let good = outputs.iter().filter(|o| verdict_is_good(o)).count();
        let good = if outputs.is_empty() {
            0.0
        } else {
            good as f64 / outputs.len() as f64
        };
        let goals = self.problem.goal.len().max(1) as f64;
        good + self.goals_met(&sim.state) as f64 / goals
    }

    fn vote(&self, states: &[String], _step: usize) -> SampleSpec {
        let instruction = render(
            VOTE,
            &[
                ("state", &describe_state(&self.problem.init)),
                ("goal", &self.goal_text()),
            ],
        );
        SampleSpec {
            prompt: vote_prompt(&instruction, states),
            stop: vec![],
            max_tokens: 400,
            ..SampleSpec::default()
        }
    }

    fn votes(&self, states: &[String], outputs: &[String]) -> Vec<f64> {
        parse_votes(outputs, states.len())
    }

    /// Every action whose preconditions hold after the plan so far, as RAP's
    /// world model lists them; none once the plan broke a rule.
    fn enumerate(&self, state: &str) -> Option<Vec<String>> {
        let sim = self.simulate(state);
        if sim.error.is_some() {
            return Some(Vec::new());
        }
        let actions = self.domain.applicable(&sim.state, &self.problem.objects);
        Some(actions.iter().map(Action::to_text).collect())
    }

    /// The action must read as one, its preconditions must hold, and it must
    /// not lead back to a state the plan was in.
    fn check_thought(&self, state: &str, thought: &str) -> Result<String, String> {
        let line = thought.lines().map(str::trim).find(|l| !l.is_empty());
        let action =
            Action::parse(line.unwrap_or(""), &self.problem.objects).map_err(|e| e.to_string())?;
        let text = action.to_text();
        let sim = self.simulate(&self.extend(state, &text));
        match (sim.error, sim.revisit) {
            (Some(error), _) => Err(error),
            (None, Some(line)) => Err(format!(
                "'{line}' returns to a state the plan was in (a shorter plan skips the loop)"
            )),
            (None, None) => Ok(text),
        }
    }

    fn is_finished(&self, state: &str) -> bool {
        !state.trim().is_empty() && self.check(state).correct
    }

    fn ruling(&self, state: &str) -> Option<Ruling> {
        self.is_finished(state).then(|| Ruling {
            value: SOLVED,
            reason: "the goal holds".into(),
        })
    }

    /// RAP's chain-of-thought baseline: the whole plan from the few-shot
    /// prompt (a plan has no reasoning to show, so `io` asks the same).
    fn chain(&self, _style: Chain) -> SampleSpec {
        self.propose("", 0)
    }

    /// The lines that read as actions, in canonical wording.
    fn chain_state(&self, output: &str) -> String {
        let actions = output
            .lines()
            .filter_map(|l| Action::parse(l, &self.problem.objects).ok());
        actions.map(|a| a.to_text()).collect::<Vec<_>>().join("\n")
    }

    fn check(&self, state: &str) -> Check {
        let sim = self.simulate(state);
        let correct = sim.error.is_none() && self.goals_met(&sim.state) == self.problem.goal.len();
        let plan: Vec<String> = sim.applied.iter().map(Action::to_text).collect();
        Check {
            answer: Some(plan.join("\n")),
            correct,
            score: if correct { 1.0 } else { 0.0 },
        }
    }
}

/// A verdict is good when "good" comes before any "bad".
fn verdict_is_good(output: &str) -> bool {
    let lower = output.to_lowercase();
    match (lower.find("good"), lower.find("bad")) {
        (Some(g), Some(b)) => g < b,
        (Some(_), None) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::super::data::{self, DataDir};
    use super::*;

    fn shared() -> DataDir {
        data::test_data_dir()
    }

    fn task(index: usize) -> (Blocksworld, data::BlocksworldInstance) {
        let inst = data::blocksworld(&shared(), index).unwrap();
        (inst.task(None).unwrap(), inst)
    }

    #[test]
    fn every_gold_plan_of_the_rap_split_validates() {
        let dir = shared();
        let n = data::blocksworld_count(&dir).unwrap();
        assert_eq!(n, 590);
        for i in 0..n {
            let inst = data::blocksworld(&dir, i).unwrap();
            let t = inst.task(None).unwrap();
            let check = t.check(&inst.gold_plan.join("\n"));
            assert!(
                check.correct,
                "gold plan {i} ({}) fails: {:?}",
                inst.path.display(),
                t.simulate(&inst.gold_plan.join("\n")).error
            );
            assert_eq!(t.steps(), inst.length);
            // The same plan in English, via the thoughts' wording.
            let english = inst
                .gold_plan
                .iter()
                .fold(String::new(), |s, a| t.extend(&s, a));
            assert!(t.check(&english).correct, "{english}");
        }
    }

    #[test]
    fn corrupted_plans_fail() {
        let (t, inst) = task(0);
        let gold = inst.gold_plan.clone();
        // Drop the first action: the second's precondition fails.
        let broken = gold[1..].join("\n");
        let sim = t.simulate(&broken);
        assert!(
            sim.error.as_deref().unwrap_or("").contains("precondition"),
            "{sim:?}"
        );
        assert!(!t.check(&broken).correct);
        // Stop one action early: every action is legal, but the goal does not hold.
        let short = gold[..gold.len() - 1].join("\n");
        assert!(t.simulate(&short).error.is_none());
        assert!(!t.check(&short).correct);
        assert!(!t.check(&format!("{}\ndance", gold.join("\n"))).correct);
        assert!(!t.check("").correct);
        assert_eq!(t.value_of(&broken, &["good".into()]), 0.0);
    }

    #[test]
    fn impossible_actions_are_pruned_and_the_goal_ends_a_path() {
        let (t, inst) = task(0);
        let gold: Vec<String> = inst.gold_plan.iter().map(|a| t.extend("", a)).collect();
        // The second action first: its preconditions fail.
        let err = t.check_thought("", &gold[1]).unwrap_err();
        assert!(err.contains("precondition"), "{err}");
        assert!(t.check_thought("", "dance with the red block").is_err());
        assert_eq!(
            t.check_thought("", &gold[0].to_uppercase()),
            Ok(gold[0].clone())
        );
        let almost = gold[..gold.len() - 1].join("\n");
        assert!(!t.is_finished(&almost) && t.ruling(&almost).is_none());
        let whole = gold.join("\n");
        assert!(t.is_finished(&whole));
        assert_eq!(t.ruling(&whole).map(|r| r.value), Some(SOLVED));
        assert_eq!(
            t.chain_state(&format!("{}\nchatter\n[PLAN END]", gold.join("\n"))),
            whole
        );
    }

    #[test]
    fn an_action_that_undoes_the_plan_so_far_is_pruned() {
        let (t, inst) = task(0);
        let first = Action::parse(&inst.gold_plan[0], &t.problem.objects).unwrap();
        let plan = t.extend("", &first.to_text());
        let undo = t
            .enumerate(&plan)
            .unwrap()
            .into_iter()
            .find(|a| t.simulate(&t.extend(&plan, a)).state == t.problem.init)
            .expect("every blocksworld action can be undone");
        let err = t.check_thought(&plan, &undo).unwrap_err();
        assert!(err.contains("returns to a state the plan was in"), "{err}");
        // Still a legal plan: only the search prunes it.
        let looped = t.extend(&plan, &undo);
        assert!(t.simulate(&looped).error.is_none());
        assert!(t.simulate(&looped).revisit.is_some());
    }

    #[test]
    fn prompts_and_values() {
        let (t, inst) = task(0);
        let p = t.sample("", 0).prompt;
        assert!(p.contains(&format!(
            "As initial conditions I have that, {}\nMy goal is to have that",
            describe_state(&t.problem.init)
        )));
        assert!(p.ends_with("My plan is as follows:"), "{p}");
        assert_eq!(t.sample("", 0).response, "[PLAN]\n");
        let first = t.extend("", &inst.gold_plan[0]);
        let v = t.value(&first, 1).prompt;
        assert!(
            v.ends_with(&format!("[ACTION]\n{first}\n[EVALUATION]\n"))
                || v.ends_with(&format!("[ACTION]\n{first}\n[EVALUATION]")),
            "{v}"
        );
        let outs: Vec<String> = vec!["good".into(), "bad".into()];
        let whole = inst
            .gold_plan
            .iter()
            .fold(String::new(), |s, a| t.extend(&s, a));
        assert!((t.value_of(&whole, &outs) - 1.5).abs() < 1e-9);
        let proposals = t.parse_proposals(
            "",
            "Pick up the red block\nnonsense\npick up the red block.\n(put-down a)",
        );
        assert_eq!(
            proposals,
            ["pick up the red block", "put down the red block"]
        );
        assert!(t.problem().starts_with("As initial conditions"));
    }

    #[test]
    fn the_valid_actions_are_listed_and_the_gold_plan_is_among_them() {
        let (t, inst) = task(0);
        let mut plan = String::new();
        for action in &inst.gold_plan {
            let listed = t.enumerate(&plan).unwrap();
            assert!(!listed.is_empty());
            for a in &listed {
                match t.check_thought(&plan, a) {
                    Ok(checked) => assert_eq!(&checked, a),
                    Err(e) => assert!(e.contains("returns to a state"), "{a}: {e}"),
                }
            }
            let gold = Action::parse(action, &t.problem.objects).unwrap().to_text();
            assert!(listed.contains(&gold), "{gold} not in {listed:?}");
            assert_eq!(t.check_thought(&plan, &gold), Ok(gold.clone()));
            plan = t.extend(&plan, &gold);
        }
        assert!(t.check(&plan).correct);
    }

    #[test]
    fn continued_actions_extend_the_plan_from_the_initial_state() {
        let (separate, inst) = task(0);
        let t = inst.task(None).unwrap().with_layout(Layout::Continue);
        let first = t.sample("", 0);
        assert_eq!(first, separate.sample("", 0));
        let plan = t.extend("", &inst.gold_plan[0]);
        let next = t.sample(&plan, 1);
        assert_eq!(
            next.prompt, first.prompt,
            "the initial state, not the one reached"
        );
        assert_eq!(next.response, format!("[PLAN]\n{plan}\n"));
        let restated = separate.sample(&plan, 1);
        assert!(restated.response == "[PLAN]\n" && restated.prompt != first.prompt);
    }
}
