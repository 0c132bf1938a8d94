//! The simulator: ground actions applied by the domain's own schemas, and
//! plans run from a problem's initial state.

use std::collections::BTreeSet;

use anyhow::{anyhow, bail, Result};

use super::english::Action;
use super::pddl::{Domain, Fact, Problem, Schema};

impl Domain {
    fn schema(&self, name: &str) -> Option<&Schema> {
        self.schemas.iter().find(|s| s.name == name)
    }

    /// Every ground action over `objects` whose preconditions hold in `state`,
    /// in schema order, then object order.
    pub fn applicable(&self, state: &BTreeSet<Fact>, objects: &[String]) -> Vec<Action> {
        let mut actions = Vec::new();
        for schema in &self.schemas {
            let mut tuples: Vec<Vec<String>> = vec![Vec::new()];
            for _ in &schema.params {
                tuples = tuples
                    .into_iter()
                    .flat_map(|t| {
                        objects
                            .iter()
                            .map(move |o| [t.clone(), vec![o.clone()]].concat())
                    })
                    .collect();
            }
            actions.extend(
                tuples
                    .into_iter()
                    .map(|args| Action {
                        name: schema.name.clone(),
                        args,
                    })
                    .filter(|a| self.apply(state, a).is_ok()),
            );
        }
        actions
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

/// The outcome of simulating a plan from the initial state.
#[derive(Debug, Clone)]
pub struct Simulation {
    /// The state after the last action that could be applied.
    pub state: BTreeSet<Fact>,
    /// The actions applied, in order.
    pub applied: Vec<Action>,
    /// Why the plan stopped early, if it did.
    pub error: Option<String>,
    /// The first action that led back to a state the plan had been in: the
    /// plan is valid, but a shorter one skips the loop.
    pub revisit: Option<String>,
}

/// Simulates each non-empty line of `plan` as one action.
pub fn simulate(domain: &Domain, problem: &Problem, plan: &str) -> Simulation {
    let mut sim = Simulation {
        state: problem.init.clone(),
        applied: Vec::new(),
        error: None,
        revisit: None,
    };
    let mut seen = BTreeSet::from([sim.state.clone()]);
    for line in plan.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let step = Action::parse(line, &problem.objects)
            .and_then(|a| Ok((domain.apply(&sim.state, &a)?, a)));
        match step {
            Ok((next, action)) => {
                if !seen.insert(next.clone()) && sim.revisit.is_none() {
                    sim.revisit = Some(line.to_string());
                }
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
