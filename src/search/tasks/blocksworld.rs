//! Blocksworld (PlanBench, RAP split): a PDDL parser for the domain and its
//! instances, a simulator that applies the domain's own action schemas, and
//! the English that PlanBench and RAP use for states and actions.
//!
//! A thought is one action. The value of a state combines the model's
//! good/bad verdicts (RAP's self-evaluation prompt) with a free signal from
//! the simulator: plans with an impossible action are worth 0, and each
//! satisfied goal atom adds to the value, which separates equally rated states.

use std::collections::BTreeSet;

use anyhow::{anyhow, bail, Context, Result};

use super::{parse_votes, render, vote_prompt};
use crate::search::task::{Check, SampleSpec, Task};

const ICL: &str = include_str!("../../../prompts/blocksworld/icl.txt");
const SELF_EVAL: &str = include_str!("../../../prompts/blocksworld/self_eval.txt");
const VOTE: &str = include_str!("../../../prompts/blocksworld/vote.txt");

/// PlanBench's object names (`encoded_objects` in configs/blocksworld.yaml).
pub const COLOURS: [(&str, &str); 12] = [
    ("a", "red block"),
    ("b", "blue block"),
    ("c", "orange block"),
    ("d", "yellow block"),
    ("e", "white block"),
    ("f", "magenta block"),
    ("g", "black block"),
    ("h", "cyan block"),
    ("i", "green block"),
    ("j", "violet block"),
    ("k", "silver block"),
    ("l", "gold block"),
];

/// The English name of an object: its colour, or "block X" past the table.
pub fn object_name(object: &str) -> String {
    COLOURS
        .iter()
        .find(|(o, _)| *o == object)
        .map_or_else(|| format!("block {object}"), |(_, name)| name.to_string())
}

// ---------------------------------------------------------------- PDDL

#[derive(Debug, Clone, PartialEq)]
enum Sexp {
    Atom(String),
    List(Vec<Sexp>),
}

impl Sexp {
    fn list(&self) -> Option<&[Sexp]> {
        match self {
            Sexp::List(items) => Some(items),
            Sexp::Atom(_) => None,
        }
    }

    fn atom(&self) -> Option<&str> {
        match self {
            Sexp::Atom(a) => Some(a),
            Sexp::List(_) => None,
        }
    }
}

/// Parses one s-expression; `;` starts a comment; names are lowercased (PDDL is case-insensitive).
fn parse_sexp(text: &str) -> Result<Sexp> {
    let mut tokens = Vec::new();
    for line in text.lines() {
        let line = line.split(';').next().unwrap_or("");
        let spaced = line.replace('(', " ( ").replace(')', " ) ");
        tokens.extend(spaced.split_whitespace().map(str::to_lowercase));
    }
    let mut pos = 0;
    let sexp = read_sexp(&tokens, &mut pos)?;
    if pos != tokens.len() {
        bail!(
            "unexpected text after the closing parenthesis: '{}'",
            tokens[pos]
        );
    }
    Ok(sexp)
}

fn read_sexp(tokens: &[String], pos: &mut usize) -> Result<Sexp> {
    let token = tokens
        .get(*pos)
        .ok_or_else(|| anyhow!("unexpected end of input"))?;
    *pos += 1;
    match token.as_str() {
        "(" => {
            let mut items = Vec::new();
            loop {
                match tokens.get(*pos).map(String::as_str) {
                    Some(")") => {
                        *pos += 1;
                        return Ok(Sexp::List(items));
                    }
                    Some(_) => items.push(read_sexp(tokens, pos)?),
                    None => bail!("missing ')'"),
                }
            }
        }
        ")" => bail!("unexpected ')'"),
        _ => Ok(Sexp::Atom(token.clone())),
    }
}

/// A predicate applied to objects (or to `?parameters` inside a schema).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fact {
    pub pred: String,
    pub args: Vec<String>,
}

impl Fact {
    fn from_sexp(s: &Sexp) -> Result<Self> {
        let items = s
            .list()
            .ok_or_else(|| anyhow!("expected a fact, got {s:?}"))?;
        let names: Option<Vec<&str>> = items.iter().map(Sexp::atom).collect();
        let names = names
            .filter(|n| !n.is_empty())
            .ok_or_else(|| anyhow!("bad fact {s:?}"))?;
        Ok(Fact {
            pred: names[0].to_string(),
            args: names[1..].iter().map(|a| a.to_string()).collect(),
        })
    }

    fn bind(&self, params: &[String], args: &[String]) -> Fact {
        let args = self
            .args
            .iter()
            .map(|a| {
                params
                    .iter()
                    .position(|p| p == a)
                    .map_or_else(|| a.clone(), |i| args[i].clone())
            })
            .collect();
        Fact {
            pred: self.pred.clone(),
            args,
        }
    }
}

/// `(and f...)` or a single literal; returns (positive, negative) facts.
fn conjunction(s: &Sexp) -> Result<(Vec<Fact>, Vec<Fact>)> {
    let items = s
        .list()
        .ok_or_else(|| anyhow!("expected a formula, got {s:?}"))?;
    let parts: Vec<&Sexp> = match items.first().and_then(Sexp::atom) {
        Some("and") => items[1..].iter().collect(),
        _ => vec![s],
    };
    let (mut pos, mut neg) = (Vec::new(), Vec::new());
    for part in parts {
        let items = part
            .list()
            .ok_or_else(|| anyhow!("expected a literal, got {part:?}"))?;
        if items.first().and_then(Sexp::atom) == Some("not") {
            let inner = items.get(1).ok_or_else(|| anyhow!("empty (not)"))?;
            neg.push(Fact::from_sexp(inner)?);
        } else {
            pos.push(Fact::from_sexp(part)?);
        }
    }
    Ok((pos, neg))
}

/// The value after `key` in a list of sections like `(:action x :parameters (...) ...)`.
fn section<'a>(items: &'a [Sexp], key: &str) -> Option<&'a Sexp> {
    let at = items.iter().position(|s| s.atom() == Some(key))?;
    items.get(at + 1)
}

/// An action schema as the domain file defines it (STRIPS with negative preconditions).
#[derive(Debug, Clone)]
pub struct Schema {
    pub name: String,
    pub params: Vec<String>,
    pub pre: Vec<Fact>,
    pub pre_not: Vec<Fact>,
    pub add: Vec<Fact>,
    pub del: Vec<Fact>,
}

#[derive(Debug, Clone)]
pub struct Domain {
    pub schemas: Vec<Schema>,
}

impl Domain {
    pub fn parse(text: &str) -> Result<Self> {
        let top = parse_sexp(text).context("parsing the PDDL domain")?;
        let items = top.list().unwrap_or_default();
        if items.first().and_then(Sexp::atom) != Some("define") {
            bail!("a PDDL domain starts with (define ...)");
        }
        let mut schemas = Vec::new();
        for item in items {
            let Some(parts) = item.list() else { continue };
            if parts.first().and_then(Sexp::atom) != Some(":action") {
                continue;
            }
            let name = parts
                .get(1)
                .and_then(Sexp::atom)
                .ok_or_else(|| anyhow!("an action without a name"))?
                .to_string();
            let params = section(parts, ":parameters")
                .and_then(Sexp::list)
                .unwrap_or_default()
                .iter()
                .filter_map(Sexp::atom)
                .filter(|p| p.starts_with('?'))
                .map(str::to_string)
                .collect();
            let (pre, pre_not) = match section(parts, ":precondition") {
                Some(s) => conjunction(s).with_context(|| format!("precondition of {name}"))?,
                None => (vec![], vec![]),
            };
            let (add, del) = match section(parts, ":effect") {
                Some(s) => conjunction(s).with_context(|| format!("effect of {name}"))?,
                None => (vec![], vec![]),
            };
            schemas.push(Schema {
                name,
                params,
                pre,
                pre_not,
                add,
                del,
            });
        }
        if schemas.is_empty() {
            bail!("the PDDL domain defines no actions");
        }
        Ok(Domain { schemas })
    }

    fn schema(&self, name: &str) -> Option<&Schema> {
        self.schemas.iter().find(|s| s.name == name)
    }

    /// Applies a ground action: an error names the first precondition that fails.
    pub fn apply(&self, state: &BTreeSet<Fact>, action: &Action) -> Result<BTreeSet<Fact>> {
        let schema = self
            .schema(&action.name)
            .ok_or_else(|| anyhow!("the domain has no action '{}'", action.name))?;
        if schema.params.len() != action.args.len() {
            bail!(
                "{} takes {} objects, got {}",
                action.name,
                schema.params.len(),
                action.args.len()
            );
        }
        let bind = |f: &Fact| f.bind(&schema.params, &action.args);
        if let Some(f) = schema.pre.iter().map(bind).find(|f| !state.contains(f)) {
            bail!(
                "precondition ({} {}) does not hold",
                f.pred,
                f.args.join(" ")
            );
        }
        if let Some(f) = schema.pre_not.iter().map(bind).find(|f| state.contains(f)) {
            bail!(
                "precondition (not ({} {})) does not hold",
                f.pred,
                f.args.join(" ")
            );
        }
        let mut next = state.clone();
        for f in schema.del.iter().map(bind) {
            next.remove(&f);
        }
        next.extend(schema.add.iter().map(bind));
        Ok(next)
    }
}

#[derive(Debug, Clone)]
pub struct Problem {
    pub objects: Vec<String>,
    pub init: BTreeSet<Fact>,
    pub goal: Vec<Fact>,
}

impl Problem {
    pub fn parse(text: &str) -> Result<Self> {
        let top = parse_sexp(text).context("parsing the PDDL problem")?;
        let items = top.list().unwrap_or_default();
        let find = |key: &str| {
            items
                .iter()
                .filter_map(Sexp::list)
                .find(|l| l.first().and_then(Sexp::atom) == Some(key))
                .map(|l| &l[1..])
        };
        let objects = find(":objects")
            .ok_or_else(|| anyhow!("the problem has no :objects"))?
            .iter()
            .filter_map(Sexp::atom)
            .map(str::to_string)
            .collect();
        let init = find(":init")
            .ok_or_else(|| anyhow!("the problem has no :init"))?
            .iter()
            .map(Fact::from_sexp)
            .collect::<Result<_>>()?;
        let goal = find(":goal").ok_or_else(|| anyhow!("the problem has no :goal"))?;
        let goal = goal.first().ok_or_else(|| anyhow!("the :goal is empty"))?;
        let (goal, negative) = conjunction(goal)?;
        if !negative.is_empty() {
            bail!("negative goals are not supported");
        }
        Ok(Problem {
            objects,
            init,
            goal,
        })
    }
}

// ---------------------------------------------------------------- actions in English

/// A ground action, e.g. `unstack a b`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub name: String,
    pub args: Vec<String>,
}

impl Action {
    /// PlanBench's wording (configs/blocksworld.yaml `actions`).
    pub fn to_text(&self) -> String {
        let o = |i: usize| {
            self.args
                .get(i)
                .map_or_else(String::new, |a| object_name(a))
        };
        match self.name.as_str() {
            "pick-up" => format!("pick up the {}", o(0)),
            "put-down" => format!("put down the {}", o(0)),
            "stack" => format!("stack the {} on top of the {}", o(0), o(1)),
            "unstack" => format!("unstack the {} from on top of the {}", o(0), o(1)),
            _ => format!("({} {})", self.name, self.args.join(" ")),
        }
    }

    /// Reads "(unstack b c)" or English such as "Unstack the red block from on
    /// top of the blue block."; objects must be among `objects`.
    pub fn parse(text: &str, objects: &[String]) -> Result<Action> {
        let t = text.trim().trim_end_matches('.').trim().to_lowercase();
        let t = t
            .trim_start_matches(|c: char| c.is_ascii_digit() || matches!(c, '.' | ')' | '-' | '*'))
            .trim();
        if let Some(inner) = t.strip_prefix('(').and_then(|s| s.strip_suffix(')')) {
            let mut words = inner.split_whitespace().map(str::to_string);
            let name = words
                .next()
                .ok_or_else(|| anyhow!("empty action '{text}'"))?;
            let args: Vec<String> = words.collect();
            if let Some(a) = args.iter().find(|a| !objects.contains(a)) {
                bail!("unknown object '{a}' in '{text}'");
            }
            return Ok(Action { name, args });
        }
        let object = |phrase: &str| -> Result<String> {
            let phrase = phrase.trim().trim_start_matches("the ").trim();
            objects
                .iter()
                .find(|o| object_name(o) == phrase)
                .cloned()
                .ok_or_else(|| anyhow!("no block '{phrase}' here, in '{text}'"))
        };
        let (name, args) = if let Some(rest) = t.strip_prefix("unstack ") {
            let (a, b) = rest
                .split_once(" from on top of ")
                .or_else(|| rest.split_once(" from "))
                .ok_or_else(|| anyhow!("cannot read '{text}' as an action"))?;
            ("unstack", vec![object(a)?, object(b)?])
        } else if let Some(rest) = t.strip_prefix("stack ") {
            let (a, b) = rest
                .split_once(" on top of ")
                .or_else(|| rest.split_once(" on "))
                .ok_or_else(|| anyhow!("cannot read '{text}' as an action"))?;
            ("stack", vec![object(a)?, object(b)?])
        } else if let Some(rest) = t.strip_prefix("pick up ") {
            ("pick-up", vec![object(rest)?])
        } else if let Some(rest) = t.strip_prefix("put down ") {
            ("put-down", vec![object(rest)?])
        } else {
            bail!("cannot read '{text}' as an action")
        };
        Ok(Action {
            name: name.to_string(),
            args,
        })
    }
}

/// "a, b and c", as PlanBench joins facts.
fn join_and(parts: &[String]) -> String {
    match parts {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {}", init.join(", "), last),
    }
}

fn fact_text(f: &Fact) -> String {
    let o = |i: usize| f.args.get(i).map_or_else(String::new, |a| object_name(a));
    match f.pred.as_str() {
        "clear" => format!("the {} is clear", o(0)),
        "handempty" => "the hand is empty".to_string(),
        "holding" => format!("the hand is holding the {}", o(0)),
        "on" => format!("the {} is on top of the {}", o(0), o(1)),
        "ontable" => format!("the {} is on the table", o(0)),
        _ => format!("({} {})", f.pred, f.args.join(" ")),
    }
}

/// A state in RAP's order: clear, hand, on, on the table.
pub fn describe_state(state: &BTreeSet<Fact>) -> String {
    let order = ["clear", "handempty", "holding", "on", "ontable"];
    let rank = |f: &Fact| {
        order
            .iter()
            .position(|p| *p == f.pred)
            .unwrap_or(order.len())
    };
    let mut facts: Vec<&Fact> = state.iter().collect();
    facts.sort_by_key(|f| rank(f));
    let texts: Vec<String> = facts.into_iter().map(fact_text).collect();
    format!("{}.", join_and(&texts))
}

/// The goal as RAP's prompt continues "My goal is to ...".
pub fn describe_goal(goal: &[Fact]) -> String {
    let texts: Vec<String> = goal.iter().map(fact_text).collect();
    format!("have that {}.", join_and(&texts))
}

// ---------------------------------------------------------------- the task

/// The outcome of simulating a plan from the initial state.
#[derive(Debug, Clone)]
pub struct Simulation {
    /// The state after the last action that could be applied.
    pub state: BTreeSet<Fact>,
    /// The actions applied, in order.
    pub applied: Vec<Action>,
    /// Why the plan stopped early, if it did.
    pub error: Option<String>,
}

pub struct Blocksworld {
    domain: Domain,
    problem: Problem,
    steps: usize,
    description: String,
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
        }
    }

    /// Simulates each non-empty line of `plan` as one action.
    pub fn simulate(&self, plan: &str) -> Simulation {
        let mut sim = Simulation {
            state: self.problem.init.clone(),
            applied: Vec::new(),
            error: None,
        };
        for line in plan.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let step = Action::parse(line, &self.problem.objects)
                .and_then(|a| Ok((self.domain.apply(&sim.state, &a)?, a)));
            match step {
                Ok((next, action)) => {
                    sim.state = next;
                    sim.applied.push(action);
                }
                Err(e) => {
                    sim.error = Some(format!("'{line}': {e}"));
                    break;
                }
            }
        }
        sim
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
    /// writes the next action as the plan's first line.
    fn sample(&self, state: &str, _step: usize) -> SampleSpec {
        let now = describe_state(&self.simulate(state).state);
        SampleSpec {
            prompt: render(ICL, &[("state", &now), ("goal", &self.goal_text())]),
            stop: vec!["\n".into()],
            max_tokens: 32,
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
        }
    }

    fn votes(&self, states: &[String], outputs: &[String]) -> Vec<f64> {
        parse_votes(outputs, states.len())
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

    const DOMAIN: &str = "(define (domain d) (:predicates (p ?x))
      (:action a :parameters (?x ?y) :precondition (and (p ?x) (not (q ?y)))
       :effect (and (q ?y) (not (p ?x)))))";

    #[test]
    fn domain_schemas_come_from_the_file() {
        let d = Domain::parse(DOMAIN).unwrap();
        let s = &d.schemas[0];
        assert_eq!(
            (
                s.name.as_str(),
                s.params.len(),
                s.pre.len(),
                s.pre_not.len()
            ),
            ("a", 2, 1, 1)
        );
        let state: BTreeSet<Fact> = [Fact {
            pred: "p".into(),
            args: vec!["o".into()],
        }]
        .into();
        let act = Action {
            name: "a".into(),
            args: vec!["o".into(), "k".into()],
        };
        let next = d.apply(&state, &act).unwrap();
        assert_eq!(
            next.iter().map(|f| f.pred.as_str()).collect::<Vec<_>>(),
            ["q"]
        );
        let err = d.apply(&next, &act).unwrap_err().to_string();
        assert!(err.contains("(p o)"), "{err}");
        assert!(Domain::parse("(define (domain d))").is_err());
        assert!(Domain::parse("(define (domain d) (:action").is_err());
        assert!(Problem::parse("(define (problem p) (:objects a))").is_err());
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
    fn action_text_round_trips() {
        let objects: Vec<String> = COLOURS.iter().map(|(o, _)| o.to_string()).collect();
        for (name, n) in [
            ("pick-up", 1),
            ("put-down", 1),
            ("stack", 2),
            ("unstack", 2),
        ] {
            for (a, b) in [("a", "b"), ("l", "c"), ("h", "k")] {
                let args = [a, b][..n].iter().map(|s| s.to_string()).collect();
                let action = Action {
                    name: name.into(),
                    args,
                };
                assert_eq!(Action::parse(&action.to_text(), &objects).unwrap(), action);
            }
        }
        let a = Action::parse(
            "2. Unstack the red block from on top of the blue block.",
            &objects,
        )
        .unwrap();
        assert_eq!(
            a.to_text(),
            "unstack the red block from on top of the blue block"
        );
        assert_eq!(
            Action::parse("(stack a b)", &objects).unwrap().to_text(),
            "stack the red block on top of the blue block"
        );
        assert!(Action::parse("pick up the pink block", &objects).is_err());
        assert!(Action::parse("jump", &objects).is_err());
        assert!(Action::parse("(stack a z)", &objects).is_err());
    }

    #[test]
    fn colours_match_the_planbench_config() {
        let config =
            std::fs::read_to_string(shared().find(data::BLOCKSWORLD_CONFIG).unwrap()).unwrap();
        for (o, name) in COLOURS {
            assert!(
                config.contains(&format!("\"{o}\": \"{name}\"")),
                "{o} {name}"
            );
        }
    }

    #[test]
    fn prompts_and_values() {
        let (t, inst) = task(0);
        let p = t.sample("", 0).prompt;
        assert!(p.contains(&format!(
            "As initial conditions I have that, {}\nMy goal is to have that",
            describe_state(&t.problem.init)
        )));
        assert!(p.ends_with("[PLAN]\n"));
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
    fn state_descriptions_read_like_rap() {
        let p = Problem::parse(
            "(define (problem p) (:domain d) (:objects a b c d)
            (:init (handempty) (ontable b) (on a b) (clear a) (clear d) (on d c) (ontable c))
            (:goal (and (on c a))))",
        )
        .unwrap();
        assert_eq!(
            describe_state(&p.init),
            "the red block is clear, the yellow block is clear, the hand is empty, the red block is on top of the blue block, the yellow block is on top of the orange block, the blue block is on the table and the orange block is on the table."
        );
        assert_eq!(
            describe_goal(&p.goal),
            "have that the orange block is on top of the red block."
        );
    }
}
