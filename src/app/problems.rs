//! Which problems to search: the task, and problems of its dataset.

use crate::choice_enum;
use crate::search::task::{Layout, Task};
use crate::search::tasks::data::{self, DataDir};
use crate::search::tasks::{
    game24::Game24,
    gsm8k::{self, Gsm8k},
    text::Text,
};
use anyhow::{bail, Context, Result};
use std::path::Path;

choice_enum!(pub TaskName "task" {
    Gsm8k = "gsm8k",
    Game24 = "game24",
    Text = "text",
    Blocksworld = "blocksworld",
});

/// One problem to solve.
pub struct Problem {
    pub label: String,
    pub task: Box<dyn Task>,
    /// Whether the checker knows the right answer.
    pub checkable: bool,
}

/// `N` or `A-B` given to option `flag`.
pub fn parse_range(flag: &str, s: &str) -> Result<(usize, usize)> {
    let bad = || format!("{flag} {s:?}: expected a number or a range such as 900-909");
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b): (usize, usize) = (
                a.trim().parse().with_context(bad)?,
                b.trim().parse().with_context(bad)?,
            );
            if b < a {
                bail!("{}", bad());
            }
            Ok((a, b))
        }
        None => {
            let i = s.trim().parse().with_context(bad)?;
            Ok((i, i))
        }
    }
}

/// Problems `from..=to` of a task's dataset.
pub fn dataset_problems(
    task: TaskName,
    data: Option<&Path>,
    (from, to): (usize, usize),
    steps: Option<usize>,
    layout: Layout,
) -> Result<Vec<Problem>> {
    let dir = DataDir::resolve(data);
    (from..=to)
        .map(|i| {
            let problem: Box<dyn Task> = match task {
                TaskName::Gsm8k => {
                    let (q, gold) = data::gsm8k(&dir, i)?;
                    let steps = steps.unwrap_or(gsm8k::DEFAULT_STEPS);
                    Box::new(Gsm8k::new(&q, &gold, steps).with_layout(layout))
                }
                TaskName::Game24 => Box::new(Game24::new(&data::game24(&dir, i)?)?),
                TaskName::Text => Box::new(Text::new(&data::text(&dir, i)?)?),
                TaskName::Blocksworld => {
                    Box::new(data::blocksworld(&dir, i)?.task(steps)?.with_layout(layout))
                }
            };
            Ok(Problem {
                label: i.to_string(),
                task: problem,
                checkable: true,
            })
        })
        .collect()
}
