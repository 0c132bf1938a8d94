//! The steps of a Game of 24 state ("a op b = c (left: ...)"), checked: both
//! operands must be among the numbers left, the result is computed exactly,
//! and the numbers left are the task's, never the model's list.

use super::arith::{Frac, Invalid};

/// One step as the model wrote it.
#[derive(Clone, Debug, PartialEq)]
pub struct Written {
    pub a: f64,
    pub op: char,
    pub b: f64,
    pub result: f64,
    /// Decimals written in the result, for its rounding.
    pub decimals: usize,
}

/// Why a step cannot be taken.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    #[error("not a step of the form 'a op b = c (left: ...)'")]
    NotAStep,
    #[error("{0} is not among the numbers left ({1})")]
    NotLeft(String, String),
    #[error("{0}")]
    Arithmetic(Invalid),
    #[error("{expr} is {exact}, not {written}")]
    WrongResult {
        expr: String,
        exact: String,
        written: String,
    },
}

/// The numbers left after some steps, exact, each with the expression of the
/// inputs it stands for.
#[derive(Clone, Debug, PartialEq)]
pub struct Pool {
    numbers: Vec<(Frac, String)>,
}

impl Pool {
    pub fn start(inputs: &[i64]) -> Self {
        let numbers = inputs
            .iter()
            .map(|&n| (Frac::int(n as i128), n.to_string()))
            .collect();
        Pool { numbers }
    }

    /// The pool after every step line of `state`.
    pub fn replay(inputs: &[i64], state: &str) -> Result<Self, StepError> {
        let mut pool = Pool::start(inputs);
        for line in state.lines().map(str::trim).filter(|l| !l.is_empty()) {
            pool.apply(&parse(line).ok_or(StepError::NotAStep)?)?;
        }
        Ok(pool)
    }

    /// Takes a step: its operands out, its exact result in. Returns the step
    /// in canonical form, with the numbers left.
    pub fn apply(&mut self, step: &Written) -> Result<String, StepError> {
        // Taken from a copy, so a failed step leaves the pool as it was.
        let mut next = self.clone();
        let not_left = |v: f64| StepError::NotLeft(v.to_string(), self.describe());
        let a = next.take(step.a).ok_or_else(|| not_left(step.a))?;
        let b = next.take(step.b).ok_or_else(|| not_left(step.b))?;
        let exact = a.0.apply(step.op, b.0).map_err(StepError::Arithmetic)?;
        let shown = format!("{} {} {}", a.0.written(), step.op, b.0.written());
        let tolerance = 0.5 * 10f64.powi(-(step.decimals as i32)) + 1e-9;
        if (exact.to_f64() - step.result).abs() > tolerance {
            return Err(StepError::WrongResult {
                expr: shown,
                exact: exact.written(),
                written: step.result.to_string(),
            });
        }
        next.numbers
            .push((exact, format!("({} {} {})", a.1, step.op, b.1)));
        *self = next;
        Ok(format!(
            "{shown} = {} (left: {})",
            exact.written(),
            self.describe()
        ))
    }

    /// Removes the number written as `value` (to its two decimals).
    fn take(&mut self, value: f64) -> Option<(Frac, String)> {
        let at = self
            .numbers
            .iter()
            .position(|(f, _)| (f.to_f64() - value).abs() <= 0.005 + 1e-9)?;
        Some(self.numbers.remove(at))
    }

    /// The numbers left, ascending, as the state writes them.
    pub fn describe(&self) -> String {
        let mut values: Vec<Frac> = self.numbers.iter().map(|n| n.0).collect();
        values.sort_by(|x, y| x.to_f64().total_cmp(&y.to_f64()));
        values
            .iter()
            .map(|v| v.written())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The last number and its expression, once one is left.
    pub fn last(&self) -> Option<&(Frac, String)> {
        (self.numbers.len() == 1).then(|| &self.numbers[0])
    }

    /// Whether the numbers left can still make 24 (exhaustive, exact).
    pub fn solvable(&self) -> bool {
        solvable(&self.numbers.iter().map(|n| n.0).collect::<Vec<_>>())
    }
}

fn solvable(values: &[Frac]) -> bool {
    if let [only] = values {
        return *only == Frac::int(24);
    }
    for i in 0..values.len() {
        for j in 0..values.len() {
            if i == j {
                continue;
            }
            let rest = values
                .iter()
                .enumerate()
                .filter(|&(k, _)| k != i && k != j)
                .map(|(_, v)| *v);
            for op in ['+', '-', '*', '/'] {
                let Ok(v) = values[i].apply(op, values[j]) else {
                    continue;
                };
                let next: Vec<Frac> = rest.clone().chain([v]).collect();
                if solvable(&next) {
                    return true;
                }
            }
        }
    }
    false
}

/// Reads "a op b = c", optionally followed by "(left: ...)" (ignored: the
/// task computes what is left).
pub fn parse(line: &str) -> Option<Written> {
    let calc = line.split("(left").next()?;
    let (lhs, rhs) = calc.split_once('=')?;
    let (a, rest) = signed_number(lhs.trim())?;
    let rest = rest.trim_start();
    let op = match rest.chars().next()? {
        'x' | 'X' | '×' => '*',
        '÷' => '/',
        c @ ('+' | '-' | '*' | '/') => c,
        _ => return None,
    };
    let (b, tail) = signed_number(rest[op_len(rest)..].trim())?;
    let (result, rtail) = signed_number(rhs.trim())?;
    if !tail.trim().is_empty() || !rtail.trim().is_empty() {
        return None;
    }
    let decimals = rhs.trim().split_once('.').map_or(0, |(_, d)| d.len());
    Some(Written {
        a,
        op,
        b,
        result,
        decimals,
    })
}

fn op_len(text: &str) -> usize {
    text.chars().next().map_or(0, char::len_utf8)
}

/// A number (with an optional leading minus) at the start of `text`, and the rest.
fn signed_number(text: &str) -> Option<(f64, &str)> {
    let body = text.strip_prefix('-').unwrap_or(text);
    let len = body
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(body.len());
    let v: f64 = body[..len].parse().ok()?;
    let negative = body.len() < text.len();
    Some((if negative { -v } else { v }, &body[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(pool: &mut Pool, line: &str) -> Result<String, StepError> {
        pool.apply(&parse(line).ok_or(StepError::NotAStep)?)
    }

    #[test]
    fn a_valid_step_leaves_the_tasks_numbers() {
        let mut pool = Pool::start(&[2, 8, 8, 14]);
        assert_eq!(
            step(&mut pool, "14 - 8 = 6 (left: 2 6 8)"),
            Ok("14 - 8 = 6 (left: 2 6 8)".into())
        );
        // A wrong list of numbers left is replaced by the task's.
        assert_eq!(
            step(&mut pool, "8 / 2 = 4 (left: 4 8 14)"),
            Ok("8 / 2 = 4 (left: 4 6)".into())
        );
        assert_eq!(
            step(&mut pool, "4 * 6 = 24"),
            Ok("4 * 6 = 24 (left: 24)".into())
        );
        let (value, expr) = pool.last().unwrap().clone();
        assert_eq!(value, Frac::int(24));
        assert_eq!(expr, "((8 / 2) * (14 - 8))");
    }

    #[test]
    fn impossible_steps_are_named() {
        let mut pool = Pool::start(&[2, 8, 8, 14]);
        assert_eq!(
            step(&mut pool, "8 * 2 = 18 (left: 8 14 18)")
                .unwrap_err()
                .to_string(),
            "8 * 2 is 16, not 18"
        );
        assert_eq!(
            step(&mut pool, "3 + 8 = 11 (left: 2 8 11)")
                .unwrap_err()
                .to_string(),
            "3 is not among the numbers left (2 8 8 14)"
        );
        assert_eq!(
            step(&mut pool, "14 / 0 = 0").unwrap_err(),
            StepError::NotLeft("0".into(), "2 8 8 14".into())
        );
        let mut zero = Pool::start(&[4, 4, 1, 1]);
        step(&mut zero, "4 - 4 = 0").unwrap();
        assert_eq!(
            step(&mut zero, "1 / 0 = 1").unwrap_err(),
            StepError::Arithmetic(Invalid::DivisionByZero)
        );
        assert_eq!(step(&mut pool, "we add 2 and 8"), Err(StepError::NotAStep));
        // A failed step leaves the pool as it was.
        assert_eq!(pool, Pool::start(&[2, 8, 8, 14]));
    }

    #[test]
    fn fractions_are_exact_and_written_rounded() {
        let mut pool = Pool::start(&[3, 8, 3, 8]);
        assert_eq!(
            step(&mut pool, "8 / 3 = 2.67"),
            Ok("8 / 3 = 2.67 (left: 2.67 3 8)".into())
        );
        assert_eq!(
            step(&mut pool, "3 - 2.67 = 0.33"),
            Ok("3 - 2.67 = 0.33 (left: 0.33 8)".into())
        );
        assert_eq!(
            step(&mut pool, "8 / 0.33 = 24"),
            Ok("8 / 0.33 = 24 (left: 24)".into())
        );
        assert!(parse("8 - 10 = -2 (left: -2 5)").is_some());
    }

    #[test]
    fn solvable_is_exhaustive() {
        assert!(Pool::start(&[4, 9, 10, 13]).solvable());
        assert!(Pool::start(&[3, 3, 8, 8]).solvable(), "8 / (3 - 8 / 3)");
        assert!(!Pool::start(&[1, 1, 1, 1]).solvable());
    }
}
