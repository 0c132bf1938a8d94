//! Exact arithmetic for the Game of 24: fractions, and the checker of a
//! whole answer expression.

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
pub struct Frac {
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
    pub fn int(n: i128) -> Self {
        Frac { num: n, den: 1 }
    }

    pub fn to_f64(self) -> f64 {
        self.num as f64 / self.den as f64
    }

    /// As the state writes it: an integer, else two decimals (as ToT's
    /// proposals do); the state's exact values come from replaying its steps.
    pub fn written(self) -> String {
        if self.den == 1 {
            self.num.to_string()
        } else {
            let s = format!("{:.2}", self.to_f64());
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        }
    }

    pub fn new(num: i128, den: i128) -> Result<Self, Invalid> {
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

    pub fn apply(self, op: char, o: Frac) -> Result<Self, Invalid> {
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
