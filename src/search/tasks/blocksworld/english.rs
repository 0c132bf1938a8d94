//! The English that PlanBench and RAP use for objects, actions and states.

use std::collections::BTreeSet;

use anyhow::{anyhow, bail, Result};

use super::pddl::Fact;

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

#[cfg(test)]
mod tests {
    use super::super::pddl::Problem;
    use super::*;
    use crate::search::tasks::data::{self, DataDir};

    fn shared() -> DataDir {
        data::test_data_dir()
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
