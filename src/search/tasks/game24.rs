//! Game of 24 with Tree of Thoughts' prompts: propose the next arithmetic
//! steps, value states as sure / likely / impossible, and write the full
//! expression at the last step. The checker works in exact rational arithmetic.

use anyhow::{bail, Result};

use super::{parse_votes, render, vote_prompt};
use crate::search::task::{Check, SampleSpec, Task};

const PROPOSE: &str = include_str!("../../../prompts/game24/propose.txt");
const VALUE: &str = include_str!("../../../prompts/game24/value.txt");
const VALUE_LAST: &str = include_str!("../../../prompts/game24/value_last_step.txt");
const COT: &str = include_str!("../../../prompts/game24/cot.txt");
const VOTE: &str = include_str!("../../../prompts/game24/vote.txt");

/// ToT's (ad hoc) value of each verdict; a state's value sums them over samples.
const VERDICTS: [(&str, f64); 3] = [("sure", 20.0), ("likely", 1.0), ("impossible", 0.001)];

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

    /// The numbers still to combine: the "left: ..." of the state's last line.
    fn current_numbers<'a>(&'a self, state: &'a str) -> &'a str {
        let Some(last) = state.trim().lines().last() else {
            return &self.input;
        };
        match last.split_once("left: ") {
            Some((_, rest)) => rest.split(')').next().unwrap_or("").trim(),
            None => last.trim(),
        }
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

    fn steps(&self) -> usize {
        4
    }

    /// ToT's sample mode: the chain-of-thought prompt, one line per thought.
    fn sample(&self, state: &str, _step: usize) -> SampleSpec {
        SampleSpec {
            prompt: self.cot_prompt(state),
            stop: vec!["\n".into()],
            max_tokens: 60,
        }
    }

    /// Proposes next steps from the numbers left; once only 24 is left, asks
    /// for the answer expression with the chain-of-thought prompt (as ToT).
    fn propose(&self, state: &str, _step: usize) -> SampleSpec {
        if self.current_numbers(state) == "24" {
            return SampleSpec {
                prompt: self.cot_prompt(state),
                stop: vec![],
                max_tokens: 100,
            };
        }
        // Without the template's final newline: after "Possible next steps:\n"
        // the default (coder) target writes a Python program instead of the list.
        let prompt = render(PROPOSE, &[("input", self.current_numbers(state))]);
        SampleSpec {
            prompt: prompt.trim_end().to_string(),
            stop: vec![],
            max_tokens: 200,
        }
    }

    fn parse_proposals(&self, state: &str, output: &str) -> Vec<String> {
        let answer_step = self.current_numbers(state) == "24";
        output
            .lines()
            .map(strip_bullet)
            .filter(|line| {
                if answer_step {
                    line.to_lowercase().starts_with("answer:")
                } else {
                    parse_step(line).is_some()
                }
            })
            .map(str::to_string)
            .collect()
    }

    fn value(&self, state: &str, _step: usize) -> SampleSpec {
        let last = state.trim().lines().last().unwrap_or("");
        let prompt = if !last.contains("left: ") && !state.trim().is_empty() {
            let answer = strip_answer_label(last);
            render(VALUE_LAST, &[("input", &self.input), ("answer", answer)])
        } else {
            render(VALUE, &[("input", self.current_numbers(state))])
        };
        SampleSpec {
            prompt,
            stop: vec![],
            max_tokens: 120,
        }
    }

    fn value_of(&self, state: &str, outputs: &[String]) -> f64 {
        // Four lines without an answer: the search ran out of steps.
        if state.trim().lines().count() == 4 && !state.to_lowercase().contains("answer") {
            return 0.0;
        }
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
        }
    }

    fn votes(&self, states: &[String], outputs: &[String]) -> Vec<f64> {
        parse_votes(outputs, states.len())
    }

    fn check(&self, state: &str) -> Check {
        let last = state.trim().lines().last().unwrap_or("");
        let expr = strip_answer_label(last);
        let expr = expr.split('=').next().unwrap_or("").trim();
        let correct = check_expression(expr, &self.numbers).is_ok();
        Check {
            answer: (!expr.is_empty()).then(|| expr.to_string()),
            correct,
            score: if correct { 1.0 } else { 0.0 },
        }
    }
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

/// Drops list markers a chat model may put before a line ("1. ", "- ", "* ").
fn strip_bullet(line: &str) -> &str {
    let line = line.trim();
    let rest = line.trim_start_matches(|c: char| c.is_ascii_digit());
    if rest.len() < line.len() {
        if let Some(r) = rest.strip_prefix(". ").or_else(|| rest.strip_prefix(") ")) {
            return r.trim();
        }
    }
    line.strip_prefix("- ")
        .or_else(|| line.strip_prefix("* "))
        .unwrap_or(line)
        .trim()
}

/// One proposed step "a op b = c (left: x y z)": its parts, if it has that form.
pub fn parse_step(line: &str) -> Option<(String, Vec<String>)> {
    let (calc, left) = line.split_once("(left:")?;
    let left = left.strip_suffix(')').or_else(|| left.split(')').next())?;
    let left: Vec<String> = left.split_whitespace().map(str::to_string).collect();
    if left.is_empty() || left.iter().any(|n| n.parse::<f64>().is_err()) {
        return None;
    }
    let (lhs, rhs) = calc.split_once('=')?;
    rhs.trim().parse::<f64>().ok()?;
    let ops = lhs.matches(['+', '-', '*', '/']).count();
    let operands: Vec<&str> = lhs.split(['+', '-', '*', '/']).map(str::trim).collect();
    if ops != 1 || operands.iter().any(|o| o.parse::<f64>().is_err()) {
        return None;
    }
    Some((calc.trim().to_string(), left))
}

/// Why an expression is not a solution.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("cannot parse the expression: {0}")]
    Syntax(String),
    #[error("division by zero")]
    DivisionByZero,
    #[error("arithmetic overflow")]
    Overflow,
    #[error("uses {used:?}, not exactly the inputs {inputs:?}")]
    WrongNumbers { used: Vec<i64>, inputs: Vec<i64> },
    #[error("equals {0}, not 24")]
    NotTwentyFour(String),
}

/// Accepts `expr` only if it uses each input number exactly once (and no
/// other number) and equals 24 exactly.
pub fn check_expression(expr: &str, inputs: &[i64]) -> Result<(), Invalid> {
    let mut parser = Parser {
        chars: expr.chars().collect(),
        pos: 0,
        used: Vec::new(),
    };
    let value = parser.expr()?;
    if let Some(c) = parser.peek() {
        return Err(Invalid::Syntax(format!("unexpected '{c}'")));
    }
    let (mut used, mut want) = (parser.used, inputs.to_vec());
    used.sort_unstable();
    want.sort_unstable();
    if used != want {
        return Err(Invalid::WrongNumbers { used, inputs: want });
    }
    if value != Frac::int(24) {
        return Err(Invalid::NotTwentyFour(value.to_string()));
    }
    Ok(())
}

/// An exact fraction, kept reduced with a positive denominator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Frac {
    num: i128,
    den: i128,
}

impl std::fmt::Display for Frac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.den == 1 {
            write!(f, "{}", self.num)
        } else {
            write!(f, "{}/{}", self.num, self.den)
        }
    }
}

impl Frac {
    fn int(n: i128) -> Self {
        Frac { num: n, den: 1 }
    }

    fn new(num: i128, den: i128) -> Result<Self, Invalid> {
        if den == 0 {
            return Err(Invalid::DivisionByZero);
        }
        let g = gcd(num, den).max(1);
        let sign = if den < 0 { -1 } else { 1 };
        Ok(Frac {
            num: sign * (num / g),
            den: sign * (den / g),
        })
    }

    fn apply(self, op: char, o: Frac) -> Result<Self, Invalid> {
        let of = Invalid::Overflow;
        let mul = |a: i128, b: i128| a.checked_mul(b).ok_or(of.clone());
        match op {
            '+' | '-' => {
                let rhs = if op == '+' { o.num } else { -o.num };
                let n = mul(self.num, o.den)?
                    .checked_add(mul(rhs, self.den)?)
                    .ok_or(Invalid::Overflow)?;
                Frac::new(n, mul(self.den, o.den)?)
            }
            '*' => Frac::new(mul(self.num, o.num)?, mul(self.den, o.den)?),
            _ => Frac::new(mul(self.num, o.den)?, mul(self.den, o.num)?),
        }
    }
}

fn gcd(a: i128, b: i128) -> i128 {
    let (mut a, mut b) = (a.abs(), b.abs());
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Recursive descent over + - * / and parentheses; numbers are non-negative
/// integers (no unary minus: the game only combines the given numbers).
struct Parser {
    chars: Vec<char>,
    pos: usize,
    used: Vec<i64>,
}

impl Parser {
    /// The next non-space character, with Unicode operators mapped to ASCII.
    fn peek(&mut self) -> Option<char> {
        while self.chars.get(self.pos).is_some_and(|c| c.is_whitespace()) {
            self.pos += 1;
        }
        self.chars.get(self.pos).map(|&c| match c {
            '×' | 'x' | 'X' => '*',
            '÷' => '/',
            '−' => '-',
            c => c,
        })
    }

    fn expr(&mut self) -> Result<Frac, Invalid> {
        let mut value = self.term()?;
        while let Some(op @ ('+' | '-')) = self.peek() {
            self.pos += 1;
            value = value.apply(op, self.term()?)?;
        }
        Ok(value)
    }

    fn term(&mut self) -> Result<Frac, Invalid> {
        let mut value = self.factor()?;
        while let Some(op @ ('*' | '/')) = self.peek() {
            self.pos += 1;
            value = value.apply(op, self.factor()?)?;
        }
        Ok(value)
    }

    fn factor(&mut self) -> Result<Frac, Invalid> {
        match self.peek() {
            Some('(') => {
                self.pos += 1;
                let value = self.expr()?;
                if self.peek() != Some(')') {
                    return Err(Invalid::Syntax("missing ')'".into()));
                }
                self.pos += 1;
                Ok(value)
            }
            Some(c) if c.is_ascii_digit() => {
                let start = self.pos;
                // Digits only, so "4 4" stays two numbers.
                while self.chars.get(self.pos).is_some_and(|c| c.is_ascii_digit()) {
                    self.pos += 1;
                }
                let text: String = self.chars[start..self.pos].iter().collect();
                let n: i64 = text.parse().map_err(|_| Invalid::Overflow)?;
                self.used.push(n);
                Ok(Frac::int(n as i128))
            }
            Some(c) => Err(Invalid::Syntax(format!("unexpected '{c}'"))),
            None => Err(Invalid::Syntax("unexpected end".into())),
        }
    }
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
    fn proposals_are_parsed_from_lines() {
        let t = task("2 8 8 14");
        let out = "Possible next steps:\n2 + 8 = 10 (left: 8 10 14)\n1. 8 / 2 = 4 (left: 4 8 14)\n- 14 /  2 = 7 (left: 7 8 8)\nsome chatter\n2 + = 10 (left: 8)\n14 - 8 = 6";
        assert_eq!(
            t.parse_proposals("", out),
            vec![
                "2 + 8 = 10 (left: 8 10 14)",
                "8 / 2 = 4 (left: 4 8 14)",
                "14 /  2 = 7 (left: 7 8 8)"
            ]
        );
        let state = "2 * 8 = 16 (left: 8 14 16)\n14 - 8 = 6 (left: 6 16)\n16 + 6 = 22 (left: 22)";
        assert_eq!(t.current_numbers(state), "22");
        let state = "8 / 2 = 4 (left: 4 8 14)\n14 - 8 = 6 (left: 4 6)\n4 * 6 = 24 (left: 24)";
        assert_eq!(
            t.parse_proposals(state, "Steps...\nAnswer: (14 - 8) * (8 / 2) = 24\n"),
            vec!["Answer: (14 - 8) * (8 / 2) = 24"]
        );
        assert!(t.propose(state, 3).prompt.ends_with("(left: 24)\n"));
        assert!(t
            .propose("", 0)
            .prompt
            .ends_with("Input: 2 8 8 14\nPossible next steps:"));
        assert!(t
            .propose("2 + 8 = 10 (left: 8 10 14)", 1)
            .prompt
            .ends_with("Input: 8 10 14\nPossible next steps:"));
    }

    #[test]
    fn values_follow_tot() {
        let t = task("2 8 8 14");
        let outs = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let state = "2 + 8 = 10 (left: 8 10 14)";
        assert!(t.value(state, 1).prompt.ends_with("8 10 14\n"));
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
        let done = "a (left: 8 14)\nb (left: 22)\nc (left: 24)\nAnswer: x";
        assert!(t
            .value(done, 4)
            .prompt
            .ends_with("Input: 2 8 8 14\nAnswer: x\nJudge:"));
        let stuck = "a (left: 8 14)\nb (left: 22)\nc (left: 24)\nd (left: 1)";
        assert_eq!(t.value_of(stuck, &outs(&["sure"])), 0.0);
        let unjudged = t.value_of(state, &outs(&["no verdict"]));
        assert!(unjudged == 0.0 && unjudged.is_sign_positive());
    }
}
