//! The search algorithms on a scripted model with known thoughts and scores.

use seed::search::algorithms::{search, Evaluation, Method, SearchConfig, VoteWeight};
use seed::search::llm::ScriptedLlm;
use seed::search::task::{Chain, Check, Layout, Ruling, SampleSpec, Task};
use seed::search::tasks::gsm8k::Gsm8k;
use seed::search::tree::{Status, Tree};

/// A task whose prompts name the state, so the script can answer per state.
/// Thoughts are letters; a state is the letters so far; values are scripted.
#[derive(Default)]
struct Letters {
    steps: usize,
    /// States that answer the problem.
    finished: &'static [&'static str],
    /// Thoughts the rules reject.
    invalid: &'static [&'static str],
    /// States the rules value (at 10).
    ruled: &'static [&'static str],
    /// The thoughts the task lists itself (`enumerate`), if it can.
    listed: Option<&'static [&'static str]>,
}

fn letters(steps: usize) -> Letters {
    Letters {
        steps,
        ..Letters::default()
    }
}

fn spec(prompt: String) -> SampleSpec {
    SampleSpec {
        prompt,
        max_tokens: 8,
        ..SampleSpec::default()
    }
}

impl Task for Letters {
    fn name(&self) -> &'static str {
        "letters"
    }
    fn problem(&self) -> &str {
        "spell"
    }
    fn steps(&self) -> usize {
        self.steps
    }
    fn sample(&self, state: &str, _: usize) -> SampleSpec {
        spec(format!("expand:[{state}]"))
    }
    fn propose(&self, state: &str, _: usize) -> SampleSpec {
        spec(format!("propose:[{state}]"))
    }
    fn parse_proposals(&self, _: &str, output: &str) -> Vec<String> {
        output.split(',').map(str::to_string).collect()
    }
    fn extend(&self, state: &str, thought: &str) -> String {
        format!("{state}{thought}")
    }
    fn value(&self, state: &str, _: usize) -> SampleSpec {
        spec(format!("value:[{state}]"))
    }
    fn value_of(&self, _: &str, outputs: &[String]) -> f64 {
        outputs
            .iter()
            .map(|o| o.parse::<f64>().unwrap())
            .sum::<f64>()
            / outputs.len() as f64
    }
    fn vote(&self, states: &[String], _: usize) -> SampleSpec {
        spec(format!("vote:{}", states.join("|")))
    }
    fn votes(&self, states: &[String], outputs: &[String]) -> Vec<f64> {
        states
            .iter()
            .map(|s| outputs.iter().filter(|o| *o == s).count() as f64)
            .collect()
    }
    fn check(&self, state: &str) -> Check {
        Check {
            answer: Some(state.to_string()),
            correct: state == "bc",
            score: 0.0,
        }
    }
    fn enumerate(&self, _: &str) -> Option<Vec<String>> {
        self.listed
            .map(|l| l.iter().map(|t| t.to_string()).collect())
    }
    fn check_thought(&self, _: &str, thought: &str) -> Result<String, String> {
        match self.invalid.contains(&thought) {
            true => Err(format!("{thought} breaks the rules")),
            false => Ok(thought.to_string()),
        }
    }
    fn is_finished(&self, state: &str) -> bool {
        self.finished.contains(&state)
    }
    fn ruling(&self, state: &str) -> Option<Ruling> {
        self.ruled.contains(&state).then(|| Ruling {
            value: 10.0,
            reason: "ruled".into(),
        })
    }
    fn on_right_path(&self, state: &str) -> Option<bool> {
        Some(state.starts_with('c'))
    }
    fn chain(&self, style: Chain) -> SampleSpec {
        spec(format!("chain:{style:?}"))
    }
}

fn script() -> ScriptedLlm {
    ScriptedLlm::default()
        .answer("expand:[]", &["a", "b", "c"])
        .answer("expand:[a]", &["a", "b", "c"])
        .answer("expand:[b]", &["a", "b", "c"])
        .answer("expand:[c]", &["a", "b", "c"])
        .answer("value:[a]", &["1"])
        .answer("value:[b]", &["5"])
        .answer("value:[c]", &["3"])
        .answer("value:[aa]", &["9"])
        .answer("value:[ab]", &["0"])
        .answer("value:[ac]", &["0"])
        .answer("value:[ba]", &["1"])
        .answer("value:[bb]", &["1"])
        .answer("value:[bc]", &["2"])
        .answer("value:[ca]", &["4"])
        .answer("value:[cb]", &["6"])
        .answer("value:[cc]", &["0"])
}

fn run(llm: &mut ScriptedLlm, config: &SearchConfig) -> Tree {
    search(llm, &letters(2), config, &mut |_, _| {}).unwrap()
}

fn states_with(tree: &Tree, status: Status) -> Vec<&str> {
    tree.nodes
        .iter()
        .filter(|n| n.status == status)
        .map(|n| n.state.as_str())
        .collect()
}

#[test]
fn bfs_keeps_the_best_b_states() {
    let mut llm = script();
    let config = SearchConfig {
        b: 2,
        ..SearchConfig::default()
    };
    let tree = run(&mut llm, &config);
    // Step 0 keeps b (5) and c (3); step 1 expands both in one request and keeps cb (6), ca (4).
    let kept = states_with(&tree, Status::Kept);
    assert_eq!(kept, ["b", "c", "ca", "cb"]);
    assert_eq!(
        states_with(&tree, Status::Pruned),
        ["a", "ba", "bb", "bc", "cc"]
    );
    assert_eq!(tree.answer.as_ref().unwrap().answer.as_deref(), Some("cb"));
    assert_eq!(tree.path.len(), 3);
    // One generation and one evaluation request per step; step 1's generation has 2 prompts x 3 samples.
    assert_eq!(llm.requests.len(), 4);
    assert_eq!((llm.requests[2].prompts.len(), llm.requests[2].n), (2, 3));
    assert_eq!(llm.requests[3].prompts.len(), 6);
}

#[test]
fn beam_ranks_by_the_whole_path() {
    let mut llm = script();
    let config = SearchConfig {
        method: Method::Beam,
        b: 2,
        ..SearchConfig::default()
    };
    let tree = run(&mut llm, &config);
    // Cumulative: cb 3+6, bc 5+2, ca 3+4, ba/bb 5+1. Width 2 keeps cb, and bc over ca (a tie
    // at 7 goes to the earlier node); BFS would have kept ca (4 > 2).
    let last: Vec<&str> = tree
        .nodes
        .iter()
        .filter(|n| n.depth == 2 && n.status == Status::Kept)
        .map(|n| n.state.as_str())
        .collect();
    assert_eq!(last.len(), 2, "beam width");
    assert!(last.contains(&"cb") && last.contains(&"bc"), "{last:?}");
    assert_eq!(tree.answer.unwrap().answer.as_deref(), Some("cb"));
}

#[test]
fn dfs_prunes_and_backtracks() {
    let mut llm = script();
    let task = Letters {
        steps: 2,
        finished: &["ca", "cb"],
        ..Letters::default()
    };
    let config = SearchConfig {
        method: Method::Dfs,
        threshold: 3.0,
        ..SearchConfig::default()
    };
    let tree = search(&mut llm, &task, &config, &mut |_, _| {}).unwrap();
    // b (5) first: its children all score below 3, so it backtracks to c (3) and finds cb (6).
    assert_eq!(tree.answer.as_ref().unwrap().answer.as_deref(), Some("cb"));
    let pruned = states_with(&tree, Status::Pruned);
    assert_eq!(pruned, ["ba", "bb", "bc"]);
    // Children are tried best first: cb is found before ca, and a is never reached.
    let status = |s: &str| tree.nodes.iter().find(|n| n.state == s).unwrap().status;
    assert_eq!(
        (status("ca"), status("a")),
        (Status::Unexplored, Status::Unexplored)
    );
    assert_eq!(
        (status("b"), status("c"), status("cb")),
        (Status::Kept, Status::Kept, Status::Kept)
    );
}

#[test]
fn dfs_backtracks_from_a_last_step_that_does_not_answer_and_from_a_zero_answer() {
    // cb (6) is tried first but does not answer at the last step; ca answers but
    // scores 0 (a final Game of 24 number that is not 24); so the search goes
    // back up to a, and aa (9) answers.
    let mut llm = script().answer("value:[ca]", &["0"]);
    let task = Letters {
        steps: 2,
        finished: &["ca", "aa"],
        ..Letters::default()
    };
    let config = SearchConfig {
        method: Method::Dfs,
        ..SearchConfig::default()
    };
    let tree = search(&mut llm, &task, &config, &mut |_, _| {}).unwrap();
    assert_eq!(tree.answer.as_ref().unwrap().answer.as_deref(), Some("aa"));
    assert!(expanded(&llm, "a") && expanded(&llm, "b") && expanded(&llm, "c"));
    // Without an answer anywhere, the deepest best state is the fallback.
    let mut llm = script();
    let tree = search(&mut llm, &letters(2), &config, &mut |_, _| {}).unwrap();
    assert_eq!(tree.answer.unwrap().answer.as_deref(), Some("aa"));
}

#[test]
fn dfs_stops_at_its_budget() {
    let mut llm = script();
    let config = SearchConfig {
        method: Method::Dfs,
        threshold: 3.0,
        budget: 6,
        ..SearchConfig::default()
    };
    let tree = run(&mut llm, &config);
    assert_eq!(
        tree.nodes.len() - 1,
        6,
        "root's 3 children, then b's 3; c is never expanded"
    );
    // No final state was reached: the answer is the best deepest state seen.
    assert_eq!(tree.answer.unwrap().answer.as_deref(), Some("b"));
}

#[test]
fn identical_states_are_evaluated_once() {
    let mut llm = ScriptedLlm::default()
        .answer("expand:[]", &["a", "a", "b"])
        .answer("value:[a]", &["1"])
        .answer("value:[b]", &["2"]);
    let tree = search(
        &mut llm,
        &letters(1),
        &SearchConfig::default(),
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(tree.nodes.len(), 3);
    assert_eq!(llm.requests[1].prompts.len(), 2);
}

#[test]
fn vote_evaluation_and_propose_generation() {
    let mut llm = ScriptedLlm::default()
        .answer("propose:[]", &["a,b,c"])
        .answer("vote:", &["b", "c", "b"]);
    let config = SearchConfig {
        generation: seed::search::algorithms::Generation::Propose,
        evaluation: Evaluation::Vote,
        n_evaluate: 3,
        ..SearchConfig::default()
    };
    let tree = search(&mut llm, &letters(1), &config, &mut |_, _| {}).unwrap();
    let scores: Vec<f64> = tree.nodes[1..].iter().map(|n| n.score.unwrap()).collect();
    assert_eq!(scores, [0.0, 2.0, 1.0]);
    assert_eq!(tree.answer.unwrap().answer.as_deref(), Some("b"));
    assert_eq!((llm.requests[0].n, llm.requests[1].n), (1, 3));
}

#[test]
fn proposals_of_several_samples_are_pooled_once_each_up_to_k() {
    let mut llm = ScriptedLlm::default()
        .answer("propose:[]", &["a,b", "b,c", "d,a"])
        .answer("value:", &["1"]);
    let config = SearchConfig {
        generation: seed::search::algorithms::Generation::Propose,
        n_propose: vec![3],
        k: 3,
        ..SearchConfig::default()
    };
    let tree = search(&mut llm, &letters(1), &config, &mut |_, _| {}).unwrap();
    let thoughts: Vec<&str> = tree.nodes[1..].iter().map(|n| n.thought.as_str()).collect();
    assert_eq!(thoughts, ["a", "b", "c"]);
    assert_eq!(llm.requests[0].n, 3);
}

#[test]
fn enumerated_thoughts_need_no_generation_call_and_a_task_that_lists_them() {
    let mut llm = ScriptedLlm::default()
        .answer("value:[a]", &["1"])
        .answer("value:[b]", &["5"]);
    let config = SearchConfig {
        generation: seed::search::algorithms::Generation::Enumerate,
        ..SearchConfig::default()
    };
    let task = Letters {
        steps: 1,
        listed: Some(&["a", "b"]),
        ..Letters::default()
    };
    let tree = search(&mut llm, &task, &config, &mut |_, _| {}).unwrap();
    let thoughts: Vec<&str> = tree.nodes[1..].iter().map(|n| n.thought.as_str()).collect();
    assert_eq!(thoughts, ["a", "b"]);
    assert_eq!(tree.answer.unwrap().answer.as_deref(), Some("b"));
    assert!(llm
        .requests
        .iter()
        .all(|r| r.prompts.iter().all(|p| p.contains("value:"))));
    let err = search(
        &mut ScriptedLlm::default(),
        &letters(1),
        &config,
        &mut |_, _| {},
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("cannot list its next steps"), "{err}");
}

/// The script, and a third level where every state is worth 1.
fn deep_script() -> ScriptedLlm {
    script()
        .answer("expand:[", &["a", "b", "c"])
        .answer("value:[", &["1"])
}

/// Three steps; b and ca answer the problem.
fn answers_at_b_and_ca() -> Letters {
    Letters {
        steps: 3,
        finished: &["b", "ca"],
        ..Letters::default()
    }
}

fn expanded(llm: &ScriptedLlm, state: &str) -> bool {
    let prompt = format!("expand:[{state}]");
    llm.requests.iter().any(|r| r.prompts.contains(&prompt))
}

#[test]
fn bfs_ends_a_path_at_a_finished_state_and_picks_the_best_finished() {
    let mut llm = deep_script();
    let task = answers_at_b_and_ca();
    let config = SearchConfig {
        b: 2,
        ..SearchConfig::default()
    };
    let tree = search(&mut llm, &task, &config, &mut |_, _| {}).unwrap();
    // Step 0: b (5) answers, so it is a candidate and not expanded; the two
    // places go to the open c (3) and a (1). Step 1: ca (4) answers; aa (9)
    // and cb (6) go on. Step 2: nothing answers. The candidates b (5) and
    // ca (4) beat every unfinished state, aa's 9 included.
    assert!(expanded(&llm, "a") && expanded(&llm, "c") && expanded(&llm, "aa"));
    assert!(expanded(&llm, "cb") && !expanded(&llm, "b") && !expanded(&llm, "ca"));
    assert_eq!(tree.answer.as_ref().unwrap().answer.as_deref(), Some("b"));
    let finished: Vec<&str> = tree
        .nodes
        .iter()
        .filter(|n| n.finished)
        .map(|n| n.state.as_str())
        .collect();
    assert_eq!(finished, ["b", "ca"]);
    let status = |s: &str| tree.nodes.iter().find(|n| n.state == s).unwrap().status;
    assert_eq!((status("b"), status("ca")), (Status::Kept, Status::Kept));
    // Every step's candidates differ on the right path (states from c):
    // steps 0 and 1 kept one of them, step 2 (a tie at 1) kept aaa and aab.
    assert_eq!((tree.ranking.decisions, tree.ranking.right_kept), (3, 2));
}

#[test]
fn beam_picks_the_best_finished_by_its_path() {
    let mut llm = deep_script();
    let task = answers_at_b_and_ca();
    let config = SearchConfig {
        method: Method::Beam,
        b: 2,
        ..SearchConfig::default()
    };
    let tree = search(&mut llm, &task, &config, &mut |_, _| {}).unwrap();
    // Finished: b (5) and ca (3 + 4 = 7); the open aa (1 + 9) and cb (3 + 6) go on.
    assert_eq!(tree.answer.unwrap().answer.as_deref(), Some("ca"));
    assert!(expanded(&llm, "aa") && expanded(&llm, "cb"));
    assert!(!expanded(&llm, "b") && !expanded(&llm, "ca"));
}

#[test]
fn dfs_stops_at_the_best_finished_child() {
    let mut llm = script();
    let task = Letters {
        steps: 2,
        finished: &["b", "c"],
        ..Letters::default()
    };
    let config = SearchConfig {
        method: Method::Dfs,
        ..SearchConfig::default()
    };
    let tree = search(&mut llm, &task, &config, &mut |_, _| {}).unwrap();
    // b (5) is tried first and answers: no step after it.
    assert_eq!(tree.answer.unwrap().answer.as_deref(), Some("b"));
    assert!(!expanded(&llm, "b") && !expanded(&llm, "c"));
    assert_eq!(llm.requests.len(), 2);
}

#[test]
fn invalid_thoughts_are_kept_with_their_reason_and_ruled_states_are_not_asked() {
    let mut llm = script();
    let task = Letters {
        steps: 1,
        invalid: &["a"],
        ruled: &["c"],
        ..Letters::default()
    };
    let tree = search(&mut llm, &task, &SearchConfig::default(), &mut |_, _| {}).unwrap();
    let invalid = tree
        .nodes
        .iter()
        .find(|n| n.status == Status::Invalid)
        .unwrap();
    assert_eq!(invalid.thought, "a");
    assert_eq!(invalid.note.as_deref(), Some("a breaks the rules"));
    assert_eq!(invalid.score, None);
    // Only b is sent to the model; c's value (10) comes from the rules.
    assert_eq!(llm.requests[1].prompts, ["value:[b]"]);
    assert_eq!(tree.answer.unwrap().answer.as_deref(), Some("c"));
}

#[test]
fn chains_take_the_majority_answer() {
    let mut llm = ScriptedLlm::default().answer("chain:StepByStep", &["x", "y", "z", "y"]);
    let config = SearchConfig {
        method: Method::CotSc,
        k: 4,
        ..SearchConfig::default()
    };
    let tree = search(&mut llm, &letters(3), &config, &mut |_, _| {}).unwrap();
    assert_eq!(tree.answer.unwrap().answer.as_deref(), Some("y"));
    assert_eq!(
        tree.path,
        [0, 2],
        "the first chain with the majority answer"
    );
    assert_eq!((llm.requests.len(), llm.requests[0].n), (1, 4));
    let scores: Vec<f64> = tree.nodes[1..].iter().map(|n| n.score.unwrap()).collect();
    assert_eq!(scores, [1.0, 2.0, 1.0, 2.0]);

    let mut llm = ScriptedLlm::default().answer("chain:Direct", &["x"]);
    let config = SearchConfig {
        method: Method::Io,
        ..SearchConfig::default()
    };
    let tree = search(&mut llm, &letters(3), &config, &mut |_, _| {}).unwrap();
    assert_eq!(tree.answer.unwrap().answer.as_deref(), Some("x"));
    assert_eq!(llm.requests[0].n, 1);
}

#[test]
fn the_final_choice_is_counted_where_right_and_wrong_answers_compete() {
    let choices = |chains: &[&str]| {
        let mut llm = ScriptedLlm::default().answer("chain:StepByStep", chains);
        let config = SearchConfig {
            method: Method::CotSc,
            k: chains.len(),
            ..SearchConfig::default()
        };
        let tree = search(&mut llm, &letters(3), &config, &mut |_, _| {}).unwrap();
        (tree.ranking.answer_choices, tree.ranking.right_chosen)
    };
    // "bc" is the right answer of the letters task.
    assert_eq!(choices(&["bc", "y", "y"]), (1, 0), "the majority was wrong");
    assert_eq!(
        choices(&["y", "bc", "bc"]),
        (1, 1),
        "the majority was right"
    );
    assert_eq!(
        choices(&["x", "y", "y"]),
        (0, 0),
        "no right answer to choose"
    );
    assert_eq!(choices(&["bc", "bc"]), (0, 0), "no wrong answer to avoid");
}

const CLIPS: &str = "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?";

/// A model that adds 48 + 24 wrong, and continues right from the right sum.
fn wrong_sum_script(key: &str) -> ScriptedLlm {
    ScriptedLlm::default()
        .answer(
            key,
            &["Question: How many in all? Answer: 48 + 24 = 70 clips. The answer is 70."],
        )
        .answer(
            "How many in all? Answer: 48 + 24 = 72",
            &[" clips. The answer is 72."],
        )
        .answer("Rate whether a solution", &["9"])
}

fn solve_clips(llm: &mut ScriptedLlm, config: &SearchConfig) -> Tree {
    let task = Gsm8k::new(CLIPS, "72", 1);
    search(llm, &task, config, &mut |_, _| {}).unwrap()
}

#[test]
fn a_wrong_calculation_is_corrected_and_the_model_continues_from_it() {
    for (method, key) in [
        (Method::Bfs, "Write only the last step"),
        (Method::Cot, "Write the solution"),
    ] {
        let config = SearchConfig {
            method,
            k: 1,
            ..SearchConfig::default()
        };
        let mut llm = wrong_sum_script(key);
        let tree = solve_clips(&mut llm, &config);
        let answer = tree.answer.clone().unwrap();
        assert!(answer.correct, "{method:?}: {answer:?}");
        let node = &tree.nodes[1];
        assert_eq!(
            node.thought,
            "Question: How many in all? Answer: 48 + 24 = 72 clips. The answer is 72.",
            "{method:?}"
        );
        let note = node.note.as_deref().unwrap_or_default();
        assert!(note.contains("48 + 24 = 70 corrected to 72"), "{note}");
        // The continuation's prompt ends with the corrected result.
        assert!(llm.requests[1].prompts[0].ends_with("48 + 24 = 72"));

        let mut llm = wrong_sum_script(key);
        let config = SearchConfig {
            corrections: false,
            ..config
        };
        let tree = solve_clips(&mut llm, &config);
        assert!(
            !tree.answer.unwrap().correct,
            "{method:?} without corrections"
        );
        assert!(tree.nodes[1].thought.contains("= 70"));
    }
}

/// The clips problem with two first steps, one right (24 in May) and one
/// wrong (96), and whole solutions from each: mostly 72.
fn rollout_script() -> ScriptedLlm {
    let all_72 = "Question: How many in all? Answer: 48 + 24 = 72 clips. The answer is 72.";
    ScriptedLlm::default()
        .answer(
            "Now the problem to solve",
            &[
                "Question: How many in May? Answer: 48 / 2 = 24 clips.",
                "Question: How many in May? Answer: 48 * 2 = 96 clips.",
            ],
        )
        .answer("How many in May? Answer: 48 / 2 = 24 clips.", &[all_72])
        .answer(
            "How many in May? Answer: 48 * 2 = 96 clips.",
            &[
                "Question: How many in all? Answer: 48 + 96 = 144 clips. The answer is 144.",
                all_72,
            ],
        )
}

#[test]
fn rollouts_value_states_by_agreement_and_vote_in_the_answer() {
    let config = SearchConfig {
        evaluation: Evaluation::Rollout,
        k: 2,
        n_evaluate: 2,
        ..SearchConfig::default()
    };
    let task = Gsm8k::new(CLIPS, "72", 3).with_layout(Layout::Continue);
    let mut llm = rollout_script();
    let tree = search(&mut llm, &task, &config, &mut |_, _| {}).unwrap();
    let answer = tree.answer.clone().unwrap();
    assert!(answer.correct, "{answer:?}");
    // 72 three times and 144 once after the first step: 3/4 agree with the
    // right step's rollouts, (1/4 + 3/4) / 2 with the wrong one's.
    let (right, wrong) = (&tree.nodes[1], &tree.nodes[2]);
    assert!(wrong.thought.contains("96"));
    assert_eq!(right.score, Some(7.5));
    assert_eq!(wrong.score, Some(5.0));
    assert_eq!((right.status, wrong.status), (Status::Kept, Status::Pruned));
    let rollouts: Vec<_> = tree
        .nodes
        .iter()
        .filter(|n| n.status == Status::Rollout)
        .collect();
    assert_eq!(rollouts.len(), 4);
    assert!(rollouts.iter().all(|n| n.finished && n.parent <= Some(2)));
    // Rollouts are whole solutions: one request, the chain's length.
    let request = &llm.requests[1];
    assert_eq!((request.prompts.len(), request.n), (2, 2));
    assert_eq!(request.max_tokens, 400);

    // The vote heard the four rollouts and the finished step after the
    // kept state, each with its path's confidence.
    assert_eq!(tree.ballots.len(), 5);
    assert!(
        tree.ballots.iter().all(|b| b.confidence == 1.0),
        "no logprobs: all sure"
    );

    // In the separate layout the steps are not the model's own answer.
    let task = Gsm8k::new(CLIPS, "72", 3);
    let error = search(&mut rollout_script(), &task, &config, &mut |_, _| {}).unwrap_err();
    assert!(error.to_string().contains("--layout continue"), "{error}");
}

#[test]
fn a_confidence_weighted_vote_follows_the_surer_solutions() {
    // Three rollouts say 72 but the model was unsure of each (-3 per token
    // of the rollout), one says 144 and was sure of it.
    let script = || {
        rollout_script()
            .sure_of("The answer is 72", -3.0)
            .sure_of("The answer is 144", 0.0)
    };
    let task = Gsm8k::new(CLIPS, "72", 3).with_layout(Layout::Continue);
    let mut config = SearchConfig {
        evaluation: Evaluation::Rollout,
        k: 2,
        n_evaluate: 2,
        ..SearchConfig::default()
    };
    let by_value = search(&mut script(), &task, &config, &mut |_, _| {}).unwrap();
    assert!(by_value.answer.unwrap().correct, "three votes against one");

    config.vote_weight = VoteWeight::Confidence;
    let tree = search(&mut script(), &task, &config, &mut |_, _| {}).unwrap();
    let answer = tree.answer.clone().unwrap();
    assert_eq!(answer.answer.as_deref(), Some("144"), "{answer:?}");
    for ballot in &tree.ballots {
        let sure = ballot.answer.as_deref() == Some("144");
        assert_eq!(ballot.confidence == 1.0, sure, "{ballot:?}");
        assert!(ballot.confidence > 0.0 && ballot.confidence <= 1.0);
    }
}
