//! How an engine runs, and the one grammar that names a configuration:
//! `KIND[-fcfs|-batched][[W,W,..]][+pc][+ngram|+ngram-only][+adaptive][+cost][+history][+dedup]`.
//! `Display` writes it and `FromStr` reads it back (options in any order).

use crate::choice_enum;
use serde::Serialize;
use std::fmt;
use std::str::FromStr;

choice_enum!(pub EngineKind "engine" {
    Ar = "ar",
    Sd = "sd",
    Mcsd = "mcsd",
    Seed = "seed",
});

choice_enum!(
    /// How the SeeD scheduler verifies the queued drafts of a round.
    pub VerifyPolicy "verify policy" {
        /// One branch per target forward, in arrival order (the paper).
        Fcfs = "fcfs",
        /// Every queued draft in one target forward.
        Batched = "batched",
    }
);

choice_enum!(
    /// Where the speculative engines' drafts come from.
    pub Drafter "drafter" {
        /// The draft model.
        Model = "model",
        /// N-gram lookup in the branch's prompt and text and its siblings'
        /// (no draft model; a branch without a match decodes one token).
        Ngram = "ngram",
        /// N-gram lookup first, the draft model where nothing matches.
        NgramModel = "ngram+model",
    }
);

impl Drafter {
    pub fn uses_model(self) -> bool {
        self != Drafter::Ngram
    }

    pub fn uses_ngrams(self) -> bool {
        self != Drafter::Model
    }
}

/// Longest draft of the adaptive draft length.
pub const MAX_ADAPTIVE_DRAFT: usize = 16;

/// The shape of a draft: children per node at each depth. `[1, 1, 1]` is a
/// chain of three tokens; `[2, 1, 1]` two candidates, each extended by two.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TreeShape(pub Vec<usize>);

impl TreeShape {
    pub fn chain(gamma: usize) -> Self {
        TreeShape(vec![1; gamma])
    }

    pub fn depth(&self) -> usize {
        self.0.len()
    }

    pub fn is_chain(&self) -> bool {
        self.0.iter().all(|&w| w == 1)
    }
}

impl fmt::Display for TreeShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let widths: Vec<String> = self.0.iter().map(usize::to_string).collect();
        f.write_str(&widths.join(","))
    }
}

impl FromStr for TreeShape {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let widths = s
            .split(',')
            .map(|w| match w.trim().parse::<usize>() {
                Ok(n) if (1..=8).contains(&n) => Ok(n),
                _ => Err(format!(
                    "tree shape {s:?}: each width must be a number from 1 to 8"
                )),
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        if widths.len() > 16 {
            return Err(format!("tree shape {s:?} is deeper than 16"));
        }
        Ok(TreeShape(widths))
    }
}

/// How an engine runs.
#[derive(Clone, Debug, PartialEq)]
pub struct EngineConfig {
    pub kind: EngineKind,
    /// Draft shape of `sd` and `seed` when no tree is given: a chain of gamma.
    pub gamma: usize,
    /// Draft shape of `mcsd` (and of `seed` when given).
    pub tree: Option<TreeShape>,
    pub verify: VerifyPolicy,
    /// Record every draft and verify event (not part of the name).
    pub trace: bool,
    /// Keep prompt prefixes' KV across requests (see `prefix`).
    pub prefix_cache: bool,
    pub drafter: Drafter,
    /// Adapt each branch's draft length (chains only) to its acceptance:
    /// two longer after a fully accepted draft, one shorter otherwise,
    /// from 1 to [`MAX_ADAPTIVE_DRAFT`].
    pub adaptive_gamma: bool,
    /// Verify only the draft tokens whose expected yield pays for their rows
    /// of the target forward, from the forward costs and acceptance seen so
    /// far (chains only; see `cost`).
    pub cost_aware: bool,
    /// N-gram drafters also look up past requests' prompt ends and
    /// completions for greedy branches, where they match a longer suffix than
    /// the request's own text (see `ngram::History`).
    pub ngram_history: bool,
    /// Decode a greedy request's identical samples (same prompt, temperature
    /// 0) once and copy the completion: they would be the same tokens. Off by
    /// default so that tests exercise every branch; the command line turns it on.
    pub dedup_greedy: bool,
}

/// The plain base that names and options build on (`seed`, FCFS, the draft
/// model); the default configuration is [`EngineConfig::fastest`].
impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            kind: EngineKind::Seed,
            gamma: 3,
            tree: None,
            verify: VerifyPolicy::Fcfs,
            trace: false,
            prefix_cache: true,
            drafter: Drafter::Model,
            adaptive_gamma: false,
            cost_aware: false,
            ngram_history: false,
            dedup_greedy: false,
        }
    }
}

/// Draft length when a name gives no shape.
const DEFAULT_GAMMA: usize = 3;

impl EngineConfig {
    /// The one default configuration, what `solve`, `generate` and `serve`
    /// run without engine options and `bench` calls `default`: `seed` with
    /// batched verification of n-gram drafts (past requests' too, no draft
    /// model), adaptive and cost-aware draft lengths, the prefix cache and
    /// greedy deduplication. The fastest configuration `seed bench` measured
    /// on GSM8K and Game of 24 with the default target on a 2-core CPU, and
    /// through the server (README, "Tree-search benchmark").
    pub fn fastest() -> Self {
        EngineConfig {
            kind: EngineKind::Seed,
            verify: VerifyPolicy::Batched,
            drafter: Drafter::Ngram,
            adaptive_gamma: true,
            cost_aware: true,
            ngram_history: true,
            dedup_greedy: true,
            ..EngineConfig::default()
        }
    }

    /// The fastest configuration that does not speculate (`bench`'s
    /// `baseline`): `ar` with the prefix cache and greedy deduplication.
    pub fn baseline() -> Self {
        EngineConfig {
            kind: EngineKind::Ar,
            dedup_greedy: true,
            ..EngineConfig::default()
        }
    }

    /// Whether the draft settings fit together.
    pub fn check(&self) -> std::result::Result<(), String> {
        let shape = self.shape();
        if shape.depth() == 0 {
            return Err("the draft length must be at least 1".into());
        }
        if self.adaptive_gamma && !shape.is_chain() {
            return Err("an adaptive draft length needs a chain draft, not a tree".into());
        }
        if self.cost_aware && !shape.is_chain() {
            return Err("cost-aware drafting needs a chain draft, not a tree".into());
        }
        if self.ngram_history && (self.kind == EngineKind::Ar || !self.drafter.uses_ngrams()) {
            return Err("the n-gram history needs an n-gram drafter (ngram or ngram+model)".into());
        }
        Ok(())
    }

    /// The draft shape this configuration uses.
    pub fn shape(&self) -> TreeShape {
        match (&self.tree, self.kind) {
            (Some(t), _) => t.clone(),
            (None, EngineKind::Mcsd) => mcsd_default_shape(),
            (None, _) => TreeShape::chain(self.gamma),
        }
    }

    /// Whether the engine drafts with the draft model.
    pub fn needs_draft_model(&self) -> bool {
        self.kind != EngineKind::Ar && self.drafter.uses_model()
    }

    /// Sets the draft shape the way a name writes it: a chain of `sd` or
    /// `seed` as gamma, `mcsd`'s usual tree as no tree.
    fn set_shape(&mut self, shape: TreeShape) {
        self.tree = None;
        match self.kind {
            EngineKind::Mcsd if shape == mcsd_default_shape() => {}
            EngineKind::Sd | EngineKind::Seed if shape.is_chain() => self.gamma = shape.depth(),
            _ => self.tree = Some(shape),
        }
    }
}

fn mcsd_default_shape() -> TreeShape {
    TreeShape(vec![2, 1, 1])
}

impl fmt::Display for EngineConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if self.kind == EngineKind::Seed {
            write!(f, "-{}", self.verify)?;
        }
        if self.kind != EngineKind::Ar {
            write!(f, "[{}]", self.shape())?;
        }
        if self.prefix_cache {
            f.write_str("+pc")?;
        }
        if self.kind != EngineKind::Ar {
            f.write_str(match self.drafter {
                Drafter::Model => "",
                Drafter::Ngram => "+ngram-only",
                Drafter::NgramModel => "+ngram",
            })?;
            for (on, option) in [
                (self.adaptive_gamma, "+adaptive"),
                (self.cost_aware, "+cost"),
                (self.ngram_history, "+history"),
            ] {
                if on {
                    f.write_str(option)?;
                }
            }
        }
        if self.dedup_greedy {
            f.write_str("+dedup")?;
        }
        Ok(())
    }
}

/// Options after `+` and whether they are about drafting.
const OPTIONS: &str = "+pc, +ngram, +ngram-only, +adaptive, +cost, +history or +dedup";

impl FromStr for EngineConfig {
    type Err = String;

    /// `default` and `baseline` name [`EngineConfig::fastest`] and
    /// [`EngineConfig::baseline`]. A name without a shape drafts a chain of
    /// three (`mcsd`: 2,1,1); the prefix cache is off unless `+pc` is given.
    fn from_str(name: &str) -> std::result::Result<Self, String> {
        match name.trim() {
            "default" => return Ok(EngineConfig::fastest()),
            "baseline" => return Ok(EngineConfig::baseline()),
            _ => {}
        }
        let mut parts = name.trim().split('+');
        let head = parts.next().unwrap_or_default();
        let (head, shape) = split_shape(head)?;
        let (kind, verify) = match head.split_once('-') {
            Some((kind, verify)) => (kind, Some(verify)),
            None => (head, None),
        };
        let mut config = EngineConfig {
            kind: kind.parse()?,
            gamma: DEFAULT_GAMMA,
            prefix_cache: false,
            ..EngineConfig::default()
        };
        if let Some(verify) = verify {
            if config.kind != EngineKind::Seed {
                return Err("only seed takes a verify policy (-fcfs or -batched)".into());
            }
            config.verify = verify.parse()?;
        }
        if let Some(shape) = shape {
            if config.kind == EngineKind::Ar {
                return Err("ar drafts nothing, so it takes no draft shape".into());
            }
            config.set_shape(shape);
        }
        for option in parts {
            config.set_option(option)?;
        }
        config.check()?;
        Ok(config)
    }
}

impl EngineConfig {
    fn set_option(&mut self, option: &str) -> std::result::Result<(), String> {
        let drafting = !matches!(option, "pc" | "dedup");
        if drafting && self.kind == EngineKind::Ar {
            return Err(format!("ar drafts nothing, so +{option} does not apply"));
        }
        match option {
            "pc" => self.prefix_cache = true,
            "ngram" => self.drafter = Drafter::NgramModel,
            "ngram-only" => self.drafter = Drafter::Ngram,
            "adaptive" => self.adaptive_gamma = true,
            "cost" => self.cost_aware = true,
            "history" => self.ngram_history = true,
            "dedup" => self.dedup_greedy = true,
            _ => return Err(format!("unknown option +{option} (expected {OPTIONS})")),
        }
        Ok(())
    }
}

/// `seed-fcfs[2,1]` -> (`seed-fcfs`, the shape 2,1).
fn split_shape(head: &str) -> std::result::Result<(&str, Option<TreeShape>), String> {
    let Some((head, rest)) = head.split_once('[') else {
        return Ok((head, None));
    };
    let shape = rest
        .strip_suffix(']')
        .ok_or_else(|| format!("draft shape [{rest} is not closed by ]"))?;
    Ok((head, Some(shape.parse()?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let seed = EngineConfig::default();
        let configs = [
            EngineConfig {
                kind: EngineKind::Ar,
                prefix_cache: false,
                ..seed.clone()
            },
            EngineConfig {
                kind: EngineKind::Ar,
                dedup_greedy: true,
                ..seed.clone()
            },
            seed.clone(),
            EngineConfig {
                kind: EngineKind::Mcsd,
                ..seed.clone()
            },
            EngineConfig {
                kind: EngineKind::Mcsd,
                tree: Some(TreeShape(vec![3, 2])),
                prefix_cache: false,
                ..seed.clone()
            },
            EngineConfig {
                kind: EngineKind::Sd,
                gamma: 5,
                drafter: Drafter::NgramModel,
                ..seed.clone()
            },
            EngineConfig {
                verify: VerifyPolicy::Batched,
                tree: Some(TreeShape(vec![2, 1, 1])),
                ..seed.clone()
            },
            EngineConfig::fastest(),
            EngineConfig::baseline(),
        ];
        for config in configs {
            let name = config.to_string();
            assert_eq!(name.parse::<EngineConfig>(), Ok(config), "{name}");
        }
    }

    #[test]
    fn names_read_as_written() {
        let c: EngineConfig = "seed-batched[1,1,1]+pc+ngram-only+adaptive+cost+history+dedup"
            .parse()
            .unwrap();
        assert_eq!(
            c.to_string(),
            "seed-batched[1,1,1]+pc+ngram-only+adaptive+cost+history+dedup"
        );
        let c: EngineConfig = "seed+dedup+pc".parse().unwrap();
        assert_eq!(c.to_string(), "seed-fcfs[1,1,1]+pc+dedup");
        assert_eq!(
            "mcsd".parse::<EngineConfig>().unwrap().to_string(),
            "mcsd[2,1,1]"
        );
        assert_eq!(
            "default".parse::<EngineConfig>().unwrap().to_string(),
            "seed-batched[1,1,1]+pc+ngram-only+adaptive+cost+history+dedup"
        );
        assert_eq!(
            "baseline".parse::<EngineConfig>().unwrap().to_string(),
            "ar+pc+dedup"
        );
        for bad in [
            "ar[2]", "ar+ngram", "seed[2,1", "seed[0]", "sd-fcfs", "seed+x",
        ] {
            assert!(bad.parse::<EngineConfig>().is_err(), "{bad:?}");
        }
    }
}
