//! Tree search on a real model (SmolLM2 as target and as its own draft).

mod common;

use seed::decode::{Engine, EngineConfig, EngineKind, Request, Sampling};
use seed::model::Model;
use seed::search::algorithms::{search, Generation, SearchConfig};
use seed::search::llm::render;
use seed::search::task::{Chain, Layout, Task};
use seed::search::tasks::data::{self, DataDir};
use seed::search::tasks::{game24::Game24, gsm8k::Gsm8k, text::Text};
use seed::search::tree::{Phase, Status, Tree};

fn engine(kind: EngineKind) -> Engine {
    let draft =
        (kind != EngineKind::Ar).then(|| Box::new(common::smollm_exact(8192)) as Box<dyn Model>);
    let config = EngineConfig {
        kind,
        ..EngineConfig::default()
    };
    Engine::new(Box::new(common::smollm_exact(8192)), draft, config).unwrap()
}

fn tree(kind: EngineKind, task: &dyn Task, generation: Generation) -> Tree {
    let config = SearchConfig {
        generation,
        k: 2,
        steps: Some(1),
        sampling: Sampling::default(),
        // Drafts sampled at temperature 1 are often rejected: the verification path is exercised.
        draft_temperature: Some(1.0),
        ..SearchConfig::default()
    };
    search(&mut engine(kind), task, &config, &mut |_, _| {}).unwrap()
}

fn datasets() -> DataDir {
    DataDir::resolve(None)
}

#[test]
fn greedy_trees_of_ar_and_seed_are_identical_on_every_task() {
    let _lock = common::REAL_MODEL_LOCK.lock();
    let dir = datasets();
    let (question, gold) = data::gsm8k(&dir, 0).expect("GSM8K data (../shared/datasets or --data)");
    let blocks = data::blocksworld(&dir, 0)
        .expect("Blocksworld data")
        .task(Some(1))
        .unwrap();
    let tasks: Vec<(Box<dyn Task>, Generation)> = vec![
        (
            Box::new(Gsm8k::new(&question, &gold, 1)),
            Generation::Sample,
        ),
        (
            Box::new(Game24::new(&data::game24(&dir, 900).unwrap()).unwrap()),
            Generation::Propose,
        ),
        (
            Box::new(Text::new(&data::text(&dir, 0).unwrap()).unwrap()),
            Generation::Sample,
        ),
        (Box::new(blocks), Generation::Sample),
    ];
    for (task, generation) in &tasks {
        let ar = tree(EngineKind::Ar, task.as_ref(), *generation);
        let seed = tree(EngineKind::Seed, task.as_ref(), *generation);
        assert!(ar.nodes.len() > 1, "{}: nothing generated", task.name());
        assert!(
            ar.nodes[1..]
                .iter()
                .all(|n| n.score.is_some() || n.status == Status::Invalid),
            "{}: unscored valid node",
            task.name()
        );
        let drafted: usize = seed.steps.iter().map(|s| s.stats.drafted).sum();
        let accepted: usize = seed.steps.iter().map(|s| s.stats.accepted).sum();
        assert!(
            accepted > 0 && accepted < drafted,
            "{}: {accepted}/{drafted} accepted",
            task.name()
        );
        assert_eq!(
            ar.signature(),
            seed.signature(),
            "{}: trees differ",
            task.name()
        );
    }
}

/// GSM8K laid out as one chain of thought: each evaluation (and the last
/// step) is a follow-up turn whose tokens begin with the chain-of-thought
/// prompt and the state, so the prefix cache serves them; the tree is the
/// same with the cache off.
#[test]
fn continued_gsm8k_evaluations_reuse_the_chain_so_far() {
    let _lock = common::REAL_MODEL_LOCK.lock();
    let (question, gold) = data::gsm8k(&datasets(), 0).expect("GSM8K data");
    let task = Gsm8k::new(&question, &gold, 2).with_layout(Layout::Continue);
    let config = SearchConfig {
        k: 1,
        sampling: Sampling {
            temperature: 0.7,
            ..Sampling::default()
        },
        ..SearchConfig::default()
    };
    let run = |prefix_cache: bool| {
        let config_of_engine = EngineConfig {
            kind: EngineKind::Ar,
            prefix_cache,
            ..EngineConfig::default()
        };
        let mut engine =
            Engine::new(Box::new(common::smollm_exact(8192)), None, config_of_engine).unwrap();
        let tree = search(&mut engine, &task, &config, &mut |_, _| {}).unwrap();
        let cot = render(&engine, &task.chain(Chain::StepByStep)).unwrap();
        let request = Request {
            prompts: vec![cot],
            ..Request::default()
        };
        (tree, engine.tokenize(request).unwrap().prompts[0].len())
    };
    let (cached, cot_tokens) = run(true);
    let (fresh, _) = run(false);
    assert_eq!(cached.signature(), fresh.signature(), "trees differ");
    let evaluations: Vec<_> = cached
        .steps
        .iter()
        .filter(|s| s.phase == Phase::Evaluate)
        .collect();
    assert!(!evaluations.is_empty());
    for s in evaluations {
        assert!(
            s.stats.prompt_reused >= s.prompts * cot_tokens,
            "step {}: {} of {} prompt tokens reused, {} prompts of at least {cot_tokens}",
            s.step,
            s.stats.prompt_reused,
            s.stats.prompt_tokens,
            s.prompts
        );
    }
}

#[test]
fn solve_runs_a_whole_bfs_problem() {
    let _lock = common::REAL_MODEL_LOCK.lock();
    let m = common::smollm_path();
    let out = tempfile::tempdir().unwrap();
    let result = std::process::Command::new(env!("CARGO_BIN_EXE_seed"))
        .args([
            "solve",
            "--task",
            "gsm8k",
            "--index",
            "0",
            "--method",
            "bfs",
            "--steps",
            "2",
            "--k",
            "2",
            "--b",
            "2",
            "--evaluate",
            "value",
        ])
        .args([
            "--target".as_ref(),
            m.as_os_str(),
            "--draft".as_ref(),
            m.as_os_str(),
        ])
        .args(["--out".as_ref(), out.path().as_os_str()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    assert!(
        stdout.contains("gsm8k 0: answer")
            && (stdout.contains("(right)") || stdout.contains("(wrong)")),
        "{stdout}"
    );
    // Without --engine, solve takes the fastest configuration of `seed bench`.
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        stderr.contains(
            "solving with engine seed-batched[1,1,1]+pc+ngram-only+adaptive+cost+history+dedup (the default"
        ),
        "{stderr}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("gsm8k-0.json")).unwrap()).unwrap();
    let nodes = json["nodes"].as_array().unwrap();
    // Two BFS steps at most: the root, k thoughts, then k thoughts of each of
    // the b kept states that did not answer the problem.
    let open_at_1 = nodes
        .iter()
        .any(|n| n["depth"] == 1 && n["status"] == "kept" && n["finished"] == false);
    let depth = if open_at_1 { 2 } else { 1 };
    assert_eq!(
        nodes.iter().map(|n| n["depth"].as_u64().unwrap()).max(),
        Some(depth),
        "a kept open state is expanded, a finished one is not"
    );
    assert!(
        nodes.iter().skip(1).all(|n| n["score"].is_number()),
        "every generated state is evaluated"
    );
    let kept_at_1 = nodes
        .iter()
        .filter(|n| n["depth"] == 1 && n["status"] == "kept")
        .count();
    assert!(kept_at_1 <= 2);
    let requests = |phase: &str| {
        let steps = json["steps"].as_array().unwrap();
        steps.iter().filter(|s| s["phase"] == phase).count()
    };
    assert_eq!(
        requests("evaluate"),
        depth as usize,
        "one evaluation request per step"
    );
    // One generation request per step, and one per round of corrections.
    let corrected = nodes.iter().any(|n| {
        let note = n["note"].as_str().unwrap_or_default();
        note.contains("calculator")
    });
    let generations = requests("generate");
    assert!(
        generations == depth as usize || (corrected && generations > depth as usize),
        "{generations} generation requests in {depth} steps"
    );
    let path = json["path"].as_array().unwrap();
    let last = &nodes[path.last().unwrap().as_u64().unwrap() as usize];
    assert!(
        last["finished"] == true || last["depth"] == depth,
        "the chosen path ends at a finished state or the last step"
    );
    let html = std::fs::read_to_string(out.path().join("gsm8k-0.html")).unwrap();
    assert!(html.contains("chosen") && html.contains("Janet"));
}

/// The README's first command on Game of 24: the default target must answer
/// the propose prompt with steps the task can parse, so that a tree grows.
#[test]
fn solve_grows_a_game24_tree_with_the_default_target() {
    let _lock = common::REAL_MODEL_LOCK.lock();
    let target = common::model_path(seed::fetch::models::TARGET_DEFAULT);
    let out = tempfile::tempdir().unwrap();
    let result = std::process::Command::new(env!("CARGO_BIN_EXE_seed"))
        .args([
            "solve",
            "--task",
            "game24",
            "--index",
            "900",
            "--steps",
            "1",
            "--temperature",
            "0",
            "--exact",
        ])
        .args(["--target".as_ref(), target.as_os_str()])
        .args(["--out".as_ref(), out.path().as_os_str()])
        .output()
        .unwrap();
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("game24-900.json")).unwrap())
            .unwrap();
    let children: Vec<&str> = json["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["depth"] == 1 && n["status"] != "invalid")
        .map(|n| n["thought"].as_str().unwrap())
        .collect();
    // Up to k (20) valid proposals (invalid ones are kept in the tree, marked).
    assert!(
        (1..=20).contains(&children.len()),
        "valid proposals expected, got {children:?}"
    );
    assert!(
        children.iter().all(|c| c.contains("(left: ")),
        "{children:?}"
    );
}
