//! PDDL for Blocksworld: s-expressions, the domain's action schemas, and a
//! problem's objects, initial state and goal. The schemas are applied in
//! `world`.

use std::collections::BTreeSet;

use anyhow::{anyhow, bail, Context, Result};

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

    pub(super) fn bind(&self, params: &[String], args: &[String]) -> Fact {
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
