//! Checks the arithmetic a GSM8K step states ("48 / 2 = 24"): each
//! `expression = number` with at least one operator is evaluated and compared
//! with the number written after it, to the precision it is written in (so
//! "10 / 3 = 3.33" and a whole count "10 / 3 = 3" stand). Anything that does
//! not read as plain arithmetic is left alone: the checker only ever finds
//! a calculation wrong, never a step right.
//!
//! Hand-written rather than an expression crate: the text needs GSM8K's
//! conventions ($, thousands commas, `x` and `×` for times) before any
//! parser could read it, and integer division must stay exact.

/// A stated calculation that does not hold.
#[derive(Clone, Debug, PartialEq)]
pub struct WrongCalculation {
    pub written: String,
    pub value: f64,
    /// Where the written result begins in the text (after the `=` and any `$`).
    pub result_at: usize,
}

impl WrongCalculation {
    /// `text` up to this calculation's result, with the right result written
    /// in: what a calculator gives a solution at its `=`.
    pub fn corrected(&self, text: &str) -> String {
        format!("{}{}", &text[..self.result_at], format_value(self.value))
    }
}

/// A result as a solution writes it: whole numbers without decimals, others
/// to at most 4 decimals.
pub fn format_value(value: f64) -> String {
    let text = format!("{value:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    match text {
        "-0" => "0".to_string(),
        _ => text.to_string(),
    }
}

impl std::fmt::Display for WrongCalculation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value = (self.value * 1e4).round() / 1e4;
        write!(f, "the calculation {} is wrong ({value})", self.written)
    }
}

/// The first calculation in `text` that does not hold.
pub fn first_wrong(text: &str) -> Option<WrongCalculation> {
    let eqs = text.match_indices('=').map(|(i, _)| i);
    eqs.filter_map(|at| {
        let lhs = expression_before(&text[..at])?;
        let (rhs, decimals) = number_after(&text[at + 1..])?;
        let value = evaluate(&lhs)?;
        let tolerance = 0.5 * 10f64.powi(-(decimals as i32)) + 1e-9 * value.abs();
        // "a + b = c + d": the written side may be an expression itself.
        let rhs_expr = expression_after(&text[at + 1..]).and_then(|e| evaluate(&e));
        let holds = |v: f64| (value - v).abs() <= tolerance.max(1e-9 * v.abs());
        (!holds(rhs) && !rhs_expr.is_some_and(holds)).then(|| WrongCalculation {
            written: format!("{} = {}", lhs.trim(), rhs),
            value,
            result_at: result_start(text, at + 1),
        })
    })
    .next()
}

/// A character plain arithmetic is written with.
fn is_arithmetic(c: char) -> bool {
    c.is_ascii_digit() || " .,+-*/x×÷()$".contains(c)
}

/// The arithmetic that ends just before an `=`: the longest run of number and
/// operator characters, from its first digit, `$` or `(`; `None` unless it
/// holds an operator between two numbers.
fn expression_before(text: &str) -> Option<String> {
    let start = text
        .char_indices()
        .rev()
        .take_while(|&(_, c)| is_arithmetic(c))
        .last()
        .map(|(i, _)| i)?;
    let run = &text[start..];
    let from = run.find(|c: char| c.is_ascii_digit() || c == '$' || c == '(')?;
    let expr = run[from..].trim_end();
    let has_operator = tokens(expr)?.iter().any(|t| matches!(t, Token::Op(_)));
    has_operator.then(|| expr.to_string())
}

/// The arithmetic right after an `=`, up to the next `=` or word, if it
/// holds an operator.
fn expression_after(text: &str) -> Option<String> {
    let end = text.find(|c: char| !is_arithmetic(c)).unwrap_or(text.len());
    let expr = text[..end].trim().trim_end_matches(['.', ',']).trim();
    let has_operator = tokens(expr)?
        .iter()
        .skip(1)
        .any(|t| matches!(t, Token::Op(_)));
    has_operator.then(|| expr.to_string())
}

/// Where the result written from `from` (just after an `=`) begins: past
/// spaces and a `$`.
fn result_start(text: &str, from: usize) -> usize {
    let rest = &text[from..];
    let spaces = rest.len() - rest.trim_start().len();
    let dollar = usize::from(rest[spaces..].starts_with('$'));
    from + spaces + dollar
}

/// The number written after an `=`, and its count of decimals.
fn number_after(text: &str) -> Option<(f64, usize)> {
    let text = text.trim_start();
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let text = text.strip_prefix('$').unwrap_or(text);
    let mut digits = String::new();
    let mut decimals = None;
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let digit_next = chars.get(i + 1).is_some_and(|d| d.is_ascii_digit());
        match c {
            '0'..='9' => {
                digits.push(c);
                decimals = decimals.map(|d: usize| d + 1);
            }
            ',' if decimals.is_none() && digit_next && !digits.is_empty() => {}
            '.' if decimals.is_none() && digit_next => {
                digits.push('.');
                decimals = Some(0);
            }
            _ => break,
        }
    }
    let v: f64 = digits.parse().ok()?;
    Some((if negative { -v } else { v }, decimals.unwrap_or(0)))
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Token {
    Num(f64),
    Op(char),
    Open,
    Close,
}

fn tokens(expr: &str) -> Option<Vec<Token>> {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '$' => i += 1,
            '(' => {
                out.push(Token::Open);
                i += 1;
            }
            ')' => {
                out.push(Token::Close);
                i += 1;
            }
            '+' | '-' | '*' | '/' | 'x' | '×' | '÷' => {
                let op = match c {
                    'x' | '×' => '*',
                    '÷' => '/',
                    _ => c,
                };
                out.push(Token::Op(op));
                i += 1;
            }
            _ if c.is_ascii_digit() => {
                let mut s = String::new();
                while i < chars.len() {
                    let d = chars[i];
                    let digit_next = chars.get(i + 1).is_some_and(|n| n.is_ascii_digit());
                    if d.is_ascii_digit() || (d == '.' && digit_next) {
                        s.push(d);
                    } else if !(d == ',' && digit_next) {
                        break;
                    }
                    i += 1;
                }
                out.push(Token::Num(s.parse().ok()?));
            }
            _ => return None,
        }
    }
    Some(out)
}

/// The value of a plain arithmetic expression, `None` if it is not one (or
/// divides by zero).
fn evaluate(expr: &str) -> Option<f64> {
    let tokens = tokens(expr)?;
    let mut at = 0;
    let value = sum(&tokens, &mut at)?;
    (at == tokens.len()).then_some(value)
}

fn sum(t: &[Token], at: &mut usize) -> Option<f64> {
    let mut value = product(t, at)?;
    while let Some(Token::Op(op @ ('+' | '-'))) = t.get(*at) {
        *at += 1;
        let rhs = product(t, at)?;
        value = if *op == '+' { value + rhs } else { value - rhs };
    }
    Some(value)
}

fn product(t: &[Token], at: &mut usize) -> Option<f64> {
    let mut value = atom(t, at)?;
    while let Some(Token::Op(op @ ('*' | '/'))) = t.get(*at) {
        *at += 1;
        let rhs = atom(t, at)?;
        value = if *op == '*' {
            value * rhs
        } else if rhs != 0.0 {
            value / rhs
        } else {
            return None;
        };
    }
    Some(value)
}

fn atom(t: &[Token], at: &mut usize) -> Option<f64> {
    let token = *t.get(*at)?;
    *at += 1;
    match token {
        Token::Num(v) => Some(v),
        Token::Op('-') => atom(t, at).map(|v| -v),
        Token::Open => {
            let v = sum(t, at)?;
            (t.get(*at) == Some(&Token::Close)).then(|| *at += 1)?;
            Some(v)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrong(text: &str) -> Option<String> {
        first_wrong(text).map(|w| w.to_string())
    }

    #[test]
    fn right_calculations_stand() {
        for text in [
            "Question: How many? Answer: 48 / 2 = 24 clips.",
            "Answer: 16 - 3 - 4 = 9 eggs, and 9 * $2 = $18.",
            "Answer: $1,200 x 3 = $3,600.",
            "Answer: (2 + 3) × 4 = 20 and 10 / 3 = 3.33 and 10 / 3 = 3",
            "Answer: 12 * 2 = 24 * 3 = 72",
            "Answer: 20% of 50 = 10",
            "Answer: the total = 5 apples, x = 4",
            "Answer: 5 - 8 = -3",
            "Answer: 7 / 0 = 7",
            "Answer: 48 + (48 / 2) = 48 + 24 = 72 clips.",
        ] {
            assert_eq!(wrong(text), None, "{text}");
        }
    }

    #[test]
    fn wrong_calculations_are_named() {
        assert_eq!(
            wrong("Answer: 48 + 24 = 70 clips."),
            Some("the calculation 48 + 24 = 70 is wrong (72)".into())
        );
        assert_eq!(
            wrong("Answer: 12 * 2 = 24 * 3 = 62"),
            Some("the calculation 24 * 3 = 62 is wrong (72)".into())
        );
        assert_eq!(
            wrong("Answer: $1,200 x 3 = $3,500."),
            Some("the calculation $1,200 x 3 = 3500 is wrong (3600)".into())
        );
        assert_eq!(
            wrong("Answer: 10 / 3 = 3.5"),
            Some("the calculation 10 / 3 = 3.5 is wrong (3.3333)".into())
        );
    }

    #[test]
    fn a_wrong_result_is_replaced_and_the_rest_cut() {
        for (text, corrected) in [
            (
                "Answer: 19.50 / (1 - 0.25) = 28.50 dollars. The answer is 28.50.",
                Some("Answer: 19.50 / (1 - 0.25) = 26"),
            ),
            (
                "Answer: 12 * 2 = 24 * 3 = 62 pens",
                Some("Answer: 12 * 2 = 24 * 3 = 72"),
            ),
            (
                "Answer: $1,200 x 3 = $3,500.",
                Some("Answer: $1,200 x 3 = $3600"),
            ),
            ("Answer: 9 / 4 = 3 hours", Some("Answer: 9 / 4 = 2.25")),
            ("Answer: 10 / 3 = 3.5", Some("Answer: 10 / 3 = 3.3333")),
            ("Answer: 2 - 5 = 3", Some("Answer: 2 - 5 = -3")),
            ("Answer: 48 / 2 = 24 clips.", None),
        ] {
            let got = first_wrong(text).map(|w| w.corrected(text));
            assert_eq!(got.as_deref(), corrected, "{text}");
        }
    }
}
