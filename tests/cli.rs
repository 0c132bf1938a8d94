//! The `seed` command line: JSON output, and clear errors for bad input.

mod common;

use std::process::{Command, Output};

fn seed(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_seed"))
        .args(args)
        .output()
        .expect("run seed")
}

/// Fails with a non-zero exit, a message containing every `needles`, no panic.
fn assert_clear_error(out: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "should fail: {stderr}");
    assert!(!stderr.contains("panicked"), "panicked: {stderr}");
    for n in needles {
        assert!(stderr.contains(n), "error should mention {n:?}: {stderr}");
    }
}

fn smollm() -> String {
    common::smollm_path().display().to_string()
}

fn qwen_draft() -> String {
    common::model_path(seed::fetch::models::DRAFT_DEFAULT)
        .display()
        .to_string()
}

#[test]
fn generate_prints_json_lines() {
    let _lock = common::REAL_MODEL_LOCK.lock();
    let m = smollm();
    let out = seed(&[
        "generate",
        "--target",
        &m,
        "--draft",
        &m,
        "--engine",
        "seed",
        "--n",
        "2",
        "--max-tokens",
        "8",
        "--json",
        "Say hello.",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for l in &lines {
        assert!(l["text"].is_string());
        assert!(!l["tokens"].as_array().unwrap().is_empty());
        assert!(["stop", "length"].contains(&l["finish_reason"].as_str().unwrap()));
        for k in ["drafted", "accepted", "target_forwards"] {
            assert!(l["stats"][k].is_u64(), "stats.{k} missing");
        }
    }
}

#[test]
fn missing_model_file() {
    let out = seed(&[
        "generate",
        "--engine",
        "ar",
        "--target",
        "/no/such/model.gguf",
        "hi",
    ]);
    assert_clear_error(&out, &["/no/such/model.gguf", "does not exist"]);
}

#[test]
fn corrupt_model_files() {
    let dir = tempfile::tempdir().unwrap();
    let not_gguf = dir.path().join("text.gguf");
    std::fs::write(&not_gguf, "this is not a model").unwrap();
    let out = seed(&[
        "generate",
        "--engine",
        "ar",
        "--target",
        not_gguf.to_str().unwrap(),
        "hi",
    ]);
    assert_clear_error(&out, &["text.gguf", "not a GGUF"]);

    // A real model cut short: the header is right, the tensors are missing.
    let cut = dir.path().join("cut.gguf");
    let bytes = std::fs::read(common::smollm_path()).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
    let out = seed(&[
        "generate",
        "--engine",
        "ar",
        "--target",
        cut.to_str().unwrap(),
        "hi",
    ]);
    assert_clear_error(&out, &["cut.gguf", "could not load"]);
}

#[test]
fn draft_with_another_vocabulary() {
    let _lock = common::REAL_MODEL_LOCK.lock();
    let out = seed(&[
        "generate",
        "--engine",
        "seed",
        "--target",
        &smollm(),
        "--draft",
        &qwen_draft(),
        "--max-tokens",
        "4",
        "hi",
    ]);
    assert_clear_error(
        &out,
        &[
            "vocabulary",
            "smollm2-135m-instruct-q4_1.gguf",
            "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        ],
    );
}

#[test]
fn prompt_longer_than_the_context() {
    let _lock = common::REAL_MODEL_LOCK.lock();
    let long = "word ".repeat(300);
    let out = seed(&[
        "generate",
        "--engine",
        "ar",
        "--target",
        &smollm(),
        "--ctx",
        "256",
        &long,
    ]);
    assert_clear_error(&out, &["prompt 0 has", "context holds 256"]);
}

#[test]
fn bad_request_values() {
    // Rejected before any model is loaded or fetched.
    let out = seed(&["generate", "--n", "0", "hi"]);
    assert_clear_error(&out, &["n must be at least 1"]);
    let out = seed(&["generate", "--temperature", "-0.5", "hi"]);
    assert_clear_error(&out, &["temperature", "-0.5"]);
    let out = seed(&["generate", "--engine", "xyz", "hi"]);
    assert_clear_error(&out, &["xyz"]);
    let out = seed(&["generate", "--tree", "2,0", "hi"]);
    assert_clear_error(&out, &["tree shape"]);
    let out = seed(&["generate", "--drafter", "bogus", "hi"]);
    assert_clear_error(&out, &["bogus", "model, ngram or ngram+model"]);
    let out = seed(&["generate", "--adaptive-gamma", "--tree", "2,1", "hi"]);
    assert_clear_error(&out, &["adaptive draft length needs a chain"]);
    let out = seed(&["generate", "--cost-aware", "--tree", "2,1", "hi"]);
    assert_clear_error(&out, &["cost-aware drafting needs a chain"]);
    let out = seed(&["generate"]);
    assert_clear_error(&out, &["no prompt"]);
}

#[test]
fn missing_prompt_file() {
    let out = seed(&["generate", "--file", "/no/prompts.txt"]);
    assert_clear_error(&out, &["/no/prompts.txt"]);
}

#[test]
fn bench_compares_configurations_and_writes_its_files() {
    let _lock = common::REAL_MODEL_LOCK.lock();
    let m = smollm();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("results.json");
    let out = seed(&[
        "bench",
        "--task",
        "gsm8k",
        "--problems",
        "0-1",
        "--steps",
        "1",
        "--k",
        "2",
        "--evaluate",
        "value",
        "--target",
        &m,
        "--draft",
        &m,
        "--engines",
        "ar,ar+pc,seed-batched+pc",
        "--out",
        dir.path().to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("identity check: every configuration built the same trees as ar"));
    let results: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(results.len(), 3);
    for (r, name) in results.iter().zip(["ar", "ar+pc", "seed-batched+pc"]) {
        assert_eq!(r["config"], name);
        assert!(r["wall_s"].as_f64().unwrap() > 0.0);
        assert!(r["speedup_vs_ar"].as_f64().unwrap() > 0.0);
        assert!(r["accept_rate"].as_f64().is_some());
        assert_eq!(r["identical"], true);
    }
    // The prefix cache computes fewer prompt tokens than recomputing them.
    assert_eq!(results[0]["prompt_tokens_reused"], 0);
    assert!(results[1]["prompt_tokens_reused"].as_u64().unwrap() > 0);
    assert!(results[2]["accept_rate"].as_f64().unwrap() > 0.0);
    // Runs with the prefix cache start with the instructions both problems share cached.
    assert_eq!(results[0]["warm_prompt_tokens"], 0);
    assert!(results[1]["warm_prompt_tokens"].as_u64().unwrap() > 50);
    assert_eq!(
        results[1]["warm_prompt_tokens"],
        results[2]["warm_prompt_tokens"]
    );
    for file in ["bench.json", "bench.csv", "speedup.svg", "timeline.svg"] {
        assert!(dir.path().join(file).exists(), "{file} missing");
    }
}

#[test]
fn bench_rejects_bad_configurations_before_loading() {
    let out = seed(&[
        "bench",
        "--task",
        "gsm8k",
        "--problems",
        "0",
        "--engines",
        "ar,sd-batched",
    ]);
    assert_clear_error(&out, &["sd-batched", "verify policy"]);
    let out = seed(&["bench", "--task", "gsm8k", "--problems", "x-y"]);
    assert_clear_error(&out, &["--problems"]);
}
