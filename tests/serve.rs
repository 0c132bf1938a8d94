//! `seed serve` on the tiny model (and SmolLM2 in exact mode): a real HTTP
//! server on a free loopback port, real HTTP requests.

mod common;

use common::slow::Slow;
use seed::decode::{Engine, EngineConfig, EngineKind, Output, Request, Sampling, VerifyPolicy};
use seed::model::tiny::{TinyConfig, TinyLm};
use seed::model::Model;
use seed::search::llm::Llm;
use seed::serve::client::RemoteLlm;
use seed::serve::{self, Limits, Options, Server};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

fn config(kind: EngineKind, prefix_cache: bool) -> EngineConfig {
    EngineConfig {
        kind,
        verify: VerifyPolicy::Fcfs,
        prefix_cache,
        ..EngineConfig::default()
    }
}

fn tiny_engine(kind: EngineKind, context: usize, prefix_cache: bool) -> Engine {
    let target = TinyConfig {
        context,
        ..TinyConfig::target()
    };
    let draft = TinyConfig {
        context,
        ..TinyConfig::draft()
    };
    Engine::new(
        Box::new(TinyLm::new(target)),
        Some(Box::new(TinyLm::new(draft))),
        config(kind, prefix_cache),
    )
    .unwrap()
}

fn endless_engine(kind: EngineKind) -> Engine {
    endless_engine_with_delay(kind, Duration::from_millis(2))
}

fn endless_engine_with_delay(kind: EngineKind, delay: Duration) -> Engine {
    let slow = |c: TinyConfig| -> Box<dyn Model> {
        Box::new(Slow {
            inner: TinyLm::new(c),
            delay,
            endless: true,
        })
    };
    Engine::new(
        slow(TinyConfig::target()),
        Some(slow(TinyConfig::draft())),
        config(kind, false),
    )
    .unwrap()
}

fn options() -> Options {
    Options {
        port: 0,
        limits: Limits {
            max_n: 16,
            max_branches: 64,
            max_tokens: 1_000_000,
        },
        ..Options::default()
    }
}

fn start(options: &Options, engine: impl FnOnce() -> Engine + Send + 'static) -> Server {
    serve::start(options, move || Ok(engine())).expect("start the server")
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(120))
        .build()
}

/// A POST with the JSON content type the server requires.
fn json_post(agent: &ureq::Agent, url: &str) -> ureq::Request {
    agent.post(url).set("Content-Type", "application/json")
}

/// Sends raw bytes; returns the status and the JSON answer.
fn post_raw(url: &str, body: &str, key: Option<&str>) -> (u16, Value) {
    let mut r = agent().post(url).set("Content-Type", "application/json");
    if let Some(k) = key {
        r = r.set("Authorization", &format!("Bearer {k}"));
    }
    match r.send_string(body) {
        Ok(resp) => (resp.status(), resp.into_json().expect("a JSON answer")),
        Err(ureq::Error::Status(code, resp)) => {
            let retry = resp.header("Retry-After").map(str::to_string);
            let mut v: Value = resp.into_json().expect("a JSON error");
            v["retry_after_header"] = json!(retry);
            (code, v)
        }
        Err(e) => panic!("{url}: {e}"),
    }
}

fn post(url: &str, body: &Value) -> Value {
    let (status, v) = post_raw(url, &body.to_string(), None);
    assert_eq!(status, 200, "{v}");
    v
}

fn get(url: &str) -> Value {
    agent().get(url).call().unwrap().into_json().unwrap()
}

/// The `data:` payloads of a streamed response, up to and including `[DONE]`.
fn stream(url: &str, body: &Value) -> Vec<String> {
    let resp = json_post(&agent(), url)
        .send_string(&body.to_string())
        .expect("stream");
    assert_eq!(
        resp.header("Content-Type").unwrap_or(""),
        "text/event-stream"
    );
    let mut data = Vec::new();
    for line in BufReader::new(resp.into_reader()).lines() {
        let line = line.unwrap();
        if let Some(d) = line.strip_prefix("data: ") {
            data.push(d.to_string());
            if d == "[DONE]" {
                break;
            }
        }
    }
    data
}

fn assert_usage(v: &Value) {
    let u = &v["usage"];
    let (p, c, t) = (
        u["prompt_tokens"].as_u64().expect("prompt_tokens"),
        u["completion_tokens"].as_u64().expect("completion_tokens"),
        u["total_tokens"].as_u64().expect("total_tokens"),
    );
    assert_eq!(p + c, t, "{u}");
    assert!(p > 0);
}

/// Checks a whole response's shape; returns each choice's text by index.
fn check_response(v: &Value, chat: bool, choices: usize) -> Vec<String> {
    let (prefix, object) = if chat {
        ("chatcmpl-", "chat.completion")
    } else {
        ("cmpl-", "text_completion")
    };
    assert!(v["id"].as_str().unwrap().starts_with(prefix), "{v}");
    assert_eq!(v["object"], object);
    assert!(v["created"].as_u64().unwrap() > 1_600_000_000);
    assert!(v["model"].is_string());
    assert_usage(v);
    let list = v["choices"].as_array().unwrap();
    assert_eq!(list.len(), choices, "{v}");
    let indexes: HashSet<u64> = list.iter().map(|c| c["index"].as_u64().unwrap()).collect();
    assert_eq!(indexes, (0..choices as u64).collect(), "distinct indexes");
    let mut texts = vec![String::new(); choices];
    for c in list {
        assert!(["stop", "length"].contains(&c["finish_reason"].as_str().unwrap()));
        assert!(c["logprobs"].is_null());
        let text = if chat {
            assert_eq!(c["message"]["role"], "assistant");
            c["message"]["content"].as_str().unwrap()
        } else {
            c["text"].as_str().unwrap()
        };
        texts[c["index"].as_u64().unwrap() as usize] = text.to_string();
    }
    texts
}

/// Checks a stream's chunks; returns each choice's text by index.
fn check_stream(data: &[String], chat: bool, choices: usize, usage: bool) -> Vec<String> {
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let object = if chat {
        "chat.completion.chunk"
    } else {
        "text_completion"
    };
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let id = chunks[0]["id"].as_str().unwrap();
    let mut texts = vec![String::new(); choices];
    let mut finished = vec![false; choices];
    let mut role_seen = vec![false; choices];
    for c in &chunks {
        assert_eq!(c["id"], id, "one id per stream");
        assert_eq!(c["object"], object);
        assert!(c["created"].is_u64() && c["model"].is_string());
        for choice in c["choices"].as_array().unwrap() {
            let i = choice["index"].as_u64().unwrap() as usize;
            assert!(!finished[i], "chunk after choice {i} finished");
            let text = if chat {
                let delta = &choice["delta"];
                if delta.get("role").is_some() {
                    assert_eq!(delta["role"], "assistant");
                    assert!(!role_seen[i], "role sent twice");
                }
                role_seen[i] = true;
                delta["content"].as_str().unwrap_or("")
            } else {
                choice["text"].as_str().unwrap()
            };
            texts[i] += text;
            match choice["finish_reason"].as_str() {
                Some("stop") | Some("length") => finished[i] = true,
                None => assert!(choice["finish_reason"].is_null()),
                Some(other) => panic!("finish_reason {other}"),
            }
        }
    }
    assert!(finished.iter().all(|&f| f), "every choice finishes");
    let last = chunks.last().unwrap();
    if usage {
        assert!(last["choices"].as_array().unwrap().is_empty());
        assert_usage(last);
    }
    texts
}

#[test]
fn responses_follow_openai_format_streamed_or_not() {
    let server = start(&options(), || tiny_engine(EngineKind::Seed, 1 << 22, true));
    let base = server.base_url();
    let models = get(&format!("{base}/models"));
    assert_eq!(models["object"], "list");
    assert_eq!(models["data"][0]["object"], "model");
    assert!(models["data"][0]["id"].is_string());

    let chat_url = format!("{base}/chat/completions");
    let chat = json!({
        "model": "anything",
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}],
        "n": 3, "temperature": 1.0, "max_tokens": 30, "seed": 11, "user": "u1", "unknown_field": {"x": 1},
    });
    let whole = check_response(&post(&chat_url, &chat), true, 3);
    assert!(
        whole.iter().collect::<HashSet<_>>().len() > 1,
        "samples differ"
    );
    let mut streamed_body = chat.clone();
    streamed_body["stream"] = json!(true);
    let streamed = check_stream(&stream(&chat_url, &streamed_body), true, 3, false);
    assert_eq!(streamed, whole, "same seed, same text streamed or not");
    streamed_body["stream_options"] = json!({"include_usage": true});
    let streamed = check_stream(&stream(&chat_url, &streamed_body), true, 3, true);
    assert_eq!(streamed, whole);

    let completions_url = format!("{base}/completions");
    let completions = json!({
        "model": "anything", "prompt": ["a tree", "of thoughts"], "n": 2,
        "temperature": 0.8, "max_tokens": 25, "stop": ["e", "q"], "seed": 5,
    });
    let whole = check_response(&post(&completions_url, &completions), false, 4);
    assert!(whole.iter().all(|t| !t.contains('e') && !t.contains('q')));
    let mut streamed_body = completions.clone();
    streamed_body["stream"] = json!(true);
    let streamed = check_stream(&stream(&completions_url, &streamed_body), false, 4, false);
    assert_eq!(streamed, whole);
    server.shutdown().unwrap();
}

fn engine_request(prompts: &[&str], n: usize, temperature: f32, seed: u64) -> Request {
    Request {
        prompts: prompts.iter().map(|p| p.to_string()).collect(),
        n,
        sampling: Sampling {
            temperature,
            ..Sampling::default()
        },
        max_tokens: 40,
        seed,
        ..Request::default()
    }
}

fn texts(out: &Output) -> Vec<String> {
    out.completions.iter().map(|c| c.text.clone()).collect()
}

#[test]
fn output_equals_engine_generate() {
    for kind in [EngineKind::Ar, EngineKind::Sd, EngineKind::Seed] {
        let server = start(&options(), move || tiny_engine(kind, 1 << 22, true));
        let base = server.base_url();
        // Greedy, and sampled with a seed: each branch has its own streams.
        for (temperature, seed) in [(0.0, 0), (1.0, 42)] {
            let mut local = tiny_engine(kind, 1 << 22, true);
            let prompts = ["hello there", "what is two plus two?"];
            let expected = local
                .generate(&engine_request(&prompts, 2, temperature, seed))
                .unwrap();
            let got = post(
                &format!("{base}/completions"),
                &json!({"prompt": prompts, "n": 2, "max_tokens": 40, "temperature": temperature, "seed": seed}),
            );
            assert_eq!(
                check_response(&got, false, 4),
                texts(&expected),
                "{kind} t={temperature}"
            );
            let tokens: usize = expected.completions.iter().map(|c| c.tokens.len()).sum();
            assert_eq!(got["usage"]["completion_tokens"], tokens);
            assert_eq!(got["usage"]["prompt_tokens"], expected.stats.prompt_tokens);

            let chat = local.chat_prompt("hello there").unwrap();
            let expected = local
                .generate(&engine_request(&[&chat], 1, temperature, seed))
                .unwrap();
            let got = post(
                &format!("{base}/chat/completions"),
                &json!({"messages": [{"role": "user", "content": "hello there"}], "max_tokens": 40, "temperature": temperature, "seed": seed}),
            );
            assert_eq!(
                check_response(&got, true, 1),
                texts(&expected),
                "{kind} chat"
            );
        }
        server.shutdown().unwrap();
    }
}

#[test]
fn thirty_two_concurrent_clients_each_get_their_own_result() {
    let server = start(&options(), || tiny_engine(EngineKind::Seed, 1 << 22, true));
    let url = format!("{}/completions", server.base_url());
    let prompt = |i: usize| format!("client {i} asks: what is {i} plus {i}?");
    let mut local = tiny_engine(EngineKind::Seed, 1 << 22, true);
    let outputs: Vec<Output> = (0..32)
        .map(|i| {
            let request = engine_request(&[&prompt(i)], 2, 1.0, i as u64);
            local.generate(&request).unwrap()
        })
        .collect();
    let expected: Vec<Vec<String>> = outputs.iter().map(texts).collect();
    let barrier = std::sync::Barrier::new(32);
    let got: Vec<Vec<String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..32)
            .map(|i| {
                let (url, barrier, prompt) = (&url, &barrier, prompt(i));
                scope.spawn(move || {
                    barrier.wait();
                    let body = json!({"prompt": prompt, "n": 2, "max_tokens": 40, "temperature": 1.0, "seed": i});
                    check_response(&post(url, &body), false, 2)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for i in 0..32 {
        assert_eq!(got[i], expected[i], "client {i}");
    }
    let health = get(&format!("http://{}/health", server.addr()));
    assert_eq!(health["completed"], 32);
    assert_eq!(health["live_branches"], 0);
    // /health adds up what the requests cost, as generating them alone did.
    let total = |f: fn(&Output) -> usize| outputs.iter().map(f).sum::<usize>();
    let totals = &health["totals"];
    assert_eq!(
        totals["generated_tokens"],
        total(|o| o.stats.generated_tokens)
    );
    assert_eq!(totals["prompt_tokens"], total(|o| o.stats.prompt_tokens));
    server.shutdown().unwrap();
}

/// Polls `/health` until `done` holds (a liveness bound, not a timing claim).
fn wait_for_health(server: &Server, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let h = get(&format!("http://{}/health", server.addr()));
        if done(&h) {
            return h;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "health never got there: {h}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_client_that_disconnects_frees_its_sequences() {
    for kind in [EngineKind::Ar, EngineKind::Seed] {
        let server = start(&options(), move || endless_engine(kind));
        let url = format!("{}/completions", server.base_url());
        let body = json!({"prompt": "abc", "n": 3, "max_tokens": 900_000, "stream": true});
        let resp = json_post(&agent(), &url)
            .send_string(&body.to_string())
            .unwrap();
        let mut lines = BufReader::new(resp.into_reader()).lines();
        let mut chunks = 0;
        while chunks < 5 {
            if lines.next().unwrap().unwrap().starts_with("data: {") {
                chunks += 1;
            }
        }
        let h = get(&format!("http://{}/health", server.addr()));
        assert_eq!(h["live_branches"], 3, "{h}");
        assert!(h["target_sequences"].as_u64().unwrap() >= 3, "{h}");
        drop(lines);
        let h = wait_for_health(&server, |h| h["cancelled"] == 1 && h["live_branches"] == 0);
        assert_eq!(h["in_flight"], 0, "{h}");
        assert_eq!(h["target_sequences"], 0, "{kind}: {h}");
        assert_eq!(h["draft_sequences"], 0, "{kind}: {h}");
        assert_eq!(h["completed"], 0, "{h}");
        // Still serving.
        let v = post(&url, &json!({"prompt": "abc", "max_tokens": 5}));
        check_response(&v, false, 1);
        assert_eq!(v["usage"]["completion_tokens"], 5);
        server.shutdown().unwrap();
    }
}

#[test]
fn bad_requests_get_4xx_and_the_server_keeps_serving() {
    let mut options = options();
    options.api_key = Some("sekret".into());
    options.limits.max_tokens = 100;
    let server = start(&options, || tiny_engine(EngineKind::Seed, 64, true));
    let base = server.base_url();
    let url = format!("{base}/completions");
    let chat_url = format!("{base}/chat/completions");
    let key = Some("sekret");
    let good = r#"{"prompt": "abc", "max_tokens": 4}"#;
    let check_error = |(status, v): (u16, Value), want: u16, needle: &str| {
        assert_eq!(status, want, "{v}");
        let e = &v["error"];
        let message = e["message"].as_str().expect("error.message");
        assert!(
            message.contains(needle),
            "{message:?} should mention {needle:?}"
        );
        assert!(e["type"].is_string() && e.get("param").is_some() && e.get("code").is_some());
        // The server keeps serving.
        let (status, v) = post_raw(&url, good, key);
        assert_eq!(status, 200, "{v}");
    };
    check_error(post_raw(&url, good, None), 401, "API key");
    check_error(post_raw(&url, good, Some("wrong")), 401, "API key");
    check_error(post_raw(&url, "{\"prompt\": ", key), 400, "JSON");
    check_error(post_raw(&url, "not json at all", key), 400, "JSON");
    check_error(
        post_raw(&url, r#"{"prompt": "abc", "n": 0}"#, key),
        400,
        "n must be",
    );
    check_error(
        post_raw(&url, r#"{"prompt": "abc", "max_tokens": -3}"#, key),
        400,
        "max_tokens",
    );
    check_error(
        post_raw(
            &chat_url,
            r#"{"messages": [{"role": "user", "content": "a"}], "max_completion_tokens": 101}"#,
            key,
        ),
        400,
        "max_completion_tokens",
    );
    let long = "abc ".repeat(20);
    check_error(
        post_raw(
            &url,
            &json!({"prompt": long, "max_tokens": 4}).to_string(),
            key,
        ),
        400,
        "maximum context length is 64 tokens",
    );
    check_error(
        post_raw(&url, r#"{"prompt": "abc", "max_tokens": 62}"#, key),
        400,
        "maximum context length",
    );
    check_error(
        post_raw(&url, r#"{"prompt": "ABC <>", "max_tokens": 4}"#, key),
        400,
        "no token",
    );
    check_error(
        post_raw(&chat_url, r#"{"prompt": "abc"}"#, key),
        400,
        "messages",
    );
    check_error(
        post_raw(&format!("{base}/embeddings"), good, key),
        404,
        "unknown endpoint",
    );
    let (status, v) = post_raw(&url, r#"{"prompt": "abc", "max_tokens": 4, "n": 2}"#, key);
    assert_eq!(status, 200);
    check_response(&v, false, 2);
    server.shutdown().unwrap();
}

#[test]
fn a_full_queue_answers_429_and_waiting_requests_run_later() {
    let mut options = options();
    options.max_queue = 1;
    options.limits.max_branches = 1;
    let server = start(&options, || endless_engine(EngineKind::Ar));
    let url = format!("{}/completions", server.base_url());
    // A fills the batch; B waits; C finds the queue full.
    let a = json_post(&agent(), &url)
        .send_string(&json!({"prompt": "a", "max_tokens": 900_000, "stream": true}).to_string())
        .unwrap();
    let mut a_lines = BufReader::new(a.into_reader()).lines();
    assert!(a_lines.next().unwrap().unwrap().starts_with("data: {"));
    std::thread::scope(|scope| {
        let b = scope.spawn(|| post(&url, &json!({"prompt": "b", "max_tokens": 3})));
        wait_for_health(&server, |h| h["queued"] == 1);
        let (status, v) = post_raw(&url, r#"{"prompt": "c", "max_tokens": 3}"#, None);
        assert_eq!(status, 429, "{v}");
        assert_eq!(v["retry_after_header"], "1");
        assert!(v["error"]["message"].as_str().unwrap().contains("queue"));
        // A leaves: B gets the batch.
        drop(a_lines);
        let b = b.join().unwrap();
        check_response(&b, false, 1);
        assert_eq!(b["usage"]["completion_tokens"], 3);
    });
    let h = wait_for_health(&server, |h| h["live_branches"] == 0);
    assert_eq!(
        (h["cancelled"].as_u64(), h["completed"].as_u64()),
        (Some(1), Some(1))
    );
    server.shutdown().unwrap();
}

#[test]
fn shutdown_finishes_requests_in_flight() {
    let server = start(&options(), || endless_engine(EngineKind::Seed));
    let url = format!("{}/chat/completions", server.base_url());
    let addr = server.addr();
    let body = json!({
        "messages": [{"role": "user", "content": "abc"}], "max_tokens": 150, "stream": true,
        "stream_options": {"include_usage": true},
    });
    let resp = json_post(&agent(), &url)
        .send_string(&body.to_string())
        .unwrap();
    let mut lines = BufReader::new(resp.into_reader()).lines();
    let mut data = Vec::new();
    // The request is running when the server is told to stop.
    while data.is_empty() {
        if let Some(d) = lines.next().unwrap().unwrap().strip_prefix("data: ") {
            data.push(d.to_string());
        }
    }
    let stopping = std::thread::spawn(move || server.shutdown());
    for line in lines {
        if let Some(d) = line.unwrap().strip_prefix("data: ") {
            data.push(d.to_string());
        }
    }
    check_stream(&data, true, 1, true);
    let usage: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
    assert_eq!(
        usage["usage"]["completion_tokens"], 150,
        "the request ran to its end"
    );
    stopping.join().unwrap().unwrap();
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "still listening"
    );
}

#[test]
fn remote_llm_equals_the_local_engine() {
    let server = start(&options(), || tiny_engine(EngineKind::Seed, 1 << 22, true));
    let mut remote = RemoteLlm::connect(&server.base_url(), None).unwrap();
    let mut local = tiny_engine(EngineKind::Seed, 1 << 22, true);
    let users = ["a tree", "of thoughts", "a tree"];
    let mut request = engine_request(&users, 3, 0.0, 7);
    request.stop = vec!["\n".into()];
    let remote_out = {
        request.prompts = users
            .iter()
            .map(|u| {
                let message = seed::model::ChatMessage {
                    role: "user".into(),
                    content: u.to_string(),
                };
                remote.chat(&[message]).unwrap()
            })
            .collect();
        remote.generate(&request).unwrap()
    };
    request.prompts = users
        .iter()
        .map(|u| local.chat_prompt(u).unwrap())
        .collect();
    let local_out = local.generate(&request).unwrap();
    let key = |o: &Output| -> Vec<(usize, usize, String)> {
        o.completions
            .iter()
            .map(|c| (c.prompt_index, c.sample_index, c.text.clone()))
            .collect()
    };
    assert_eq!(key(&remote_out), key(&local_out));
    assert_eq!(
        remote_out.stats.generated_tokens,
        local_out.stats.generated_tokens
    );
    server.shutdown().unwrap();
}

#[test]
fn a_client_that_gives_up_waiting_frees_its_sequences() {
    let server = start(&options(), || endless_engine(EngineKind::Seed));
    let url = format!("{}/completions", server.base_url());
    let impatient = ureq::AgentBuilder::new()
        .timeout(Duration::from_millis(300))
        .build();
    let body = json!({"prompt": "abc", "n": 2, "max_tokens": 900_000});
    let err = json_post(&impatient, &url).send_string(&body.to_string());
    assert!(
        matches!(err, Err(ureq::Error::Transport(_))),
        "should time out"
    );
    drop(impatient);
    let h = wait_for_health(&server, |h| h["cancelled"] == 1 && h["live_branches"] == 0);
    assert_eq!(h["target_sequences"], 0, "{h}");
    server.shutdown().unwrap();
}

/// On a real model in exact mode (batch-invariant kernels), requests that
/// share the batch get exactly what `Engine::generate` gives each alone.
#[test]
fn concurrent_requests_on_smollm_exact_equal_generate_alone() {
    let _lock = common::REAL_MODEL_LOCK.lock();
    let smollm = || -> Engine {
        Engine::new(
            Box::new(common::smollm_exact(2048)),
            Some(Box::new(common::smollm_exact(2048))),
            config(EngineKind::Seed, true),
        )
        .unwrap()
    };
    let users = [
        "Say hello.",
        "What is 2 + 3?",
        "Name a color.",
        "Write a haiku about trees.",
    ];
    let expected: Vec<Vec<String>> = {
        let mut e = smollm();
        users
            .iter()
            .map(|u| {
                let mut request = engine_request(&[&e.chat_prompt(u).unwrap()], 2, 0.0, 0);
                request.max_tokens = 24;
                texts(&e.generate(&request).unwrap())
            })
            .collect()
    };
    let server = start(&options(), smollm);
    let url = format!("{}/chat/completions", server.base_url());
    let barrier = std::sync::Barrier::new(users.len());
    let got: Vec<Vec<String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = users
            .iter()
            .map(|u| {
                let (url, barrier) = (&url, &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    let body = json!({
                        "messages": [{"role": "user", "content": u}],
                        "n": 2, "max_tokens": 24, "temperature": 0,
                    });
                    check_response(&post(url, &body), true, 2)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(got, expected);
    server.shutdown().unwrap();
}

fn seed_bin(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_seed"))
        .args(args)
        .output()
        .expect("run seed")
}

#[test]
fn command_line_errors_are_clear() {
    let cases: [(&[&str], &str); 6] = [
        (&["serve", "--max-batch", "0"], "--max-batch 0"),
        (
            &["serve", "--drain-timeout", "soon"],
            "not a number of seconds",
        ),
        (
            &["serve", "--header-timeout", "0"],
            "header timeout must be more than 0",
        ),
        (
            &["serve", "--tree", "3,2,2", "--max-batch", "64"],
            "12 leaves",
        ),
        (
            &["generate", "--engine", "http://127.0.0.1:1/v1", "hi"],
            "only `seed solve` runs against a server",
        ),
        (
            &["loadtest", "--url", "http://10.1.2.3:8080/v1"],
            "only runs against this machine",
        ),
    ];
    for (args, needle) in cases {
        let out = seed_bin(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    // Nothing listens there: a clear error, before any model is loaded.
    let out = seed_bin(&[
        "solve",
        "--task",
        "gsm8k",
        "--question",
        "1 + 1?",
        "--engine",
        "http://127.0.0.1:9/v1",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("127.0.0.1:9"),
        "{stderr}"
    );
}

/// The binary on SmolLM2: serves on the port it prints, stops on SIGTERM
/// with exit status 0.
#[cfg(unix)]
#[test]
fn the_binary_serves_and_stops_on_sigterm() {
    let _lock = common::REAL_MODEL_LOCK.lock();
    let model = common::smollm_path().display().to_string();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_seed"))
        .args([
            "serve", "--engine", "ar", "--target", &model, "--port", "0", "--ctx", "2048",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_string();
    let v = post(
        &format!("{base}/chat/completions"),
        &json!({"messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 8, "temperature": 0}),
    );
    check_response(&v, true, 1);
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success(), "exit status after SIGTERM");
}

#[test]
fn a_seeded_sample_is_the_same_alone_and_among_sixteen_requests() {
    let _lock = common::REAL_MODEL_LOCK.lock();
    let smollm = || -> Engine {
        Engine::new(
            Box::new(common::smollm_exact(4096)),
            Some(Box::new(common::smollm_exact(4096))),
            config(EngineKind::Seed, true),
        )
        .unwrap()
    };
    let server = start(&options(), smollm);
    let url = format!("{}/chat/completions", server.base_url());
    let users = [
        "Say hello.",
        "What is 2 + 3?",
        "Name a color.",
        "Write a haiku.",
    ];
    let bodies: Vec<serde_json::Value> = (0..16)
        .map(|i| {
            json!({
                "messages": [{"role": "user", "content": users[i % 4]}],
                "n": 2, "max_tokens": 16, "temperature": 0.8, "top_p": 0.95,
                "seed": 100 + i / 4,
            })
        })
        .collect();
    let alone: Vec<Vec<String>> = bodies
        .iter()
        .map(|b| check_response(&post(&url, b), true, 2))
        .collect();
    let barrier = std::sync::Barrier::new(bodies.len());
    let together: Vec<Vec<String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = bodies
            .iter()
            .map(|body| {
                let (url, barrier) = (&url, &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    check_response(&post(url, body), true, 2)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(together, alone);
    // Another seed, other samples (same prompt and settings otherwise).
    assert!((0..4).any(|i| alone[i] != alone[i + 4]), "{alone:?}");
    server.shutdown().unwrap();
}

/// Sends `body` with any method and content type; returns the status and
/// the JSON answer, with its `Allow` header as `allow_header`.
fn send(
    method: &str,
    url: &str,
    content_type: Option<&str>,
    body: &str,
    key: Option<&str>,
) -> (u16, Value) {
    let mut r = agent().request(method, url);
    if let Some(t) = content_type {
        r = r.set("Content-Type", t);
    }
    if let Some(k) = key {
        r = r.set("Authorization", &format!("Bearer {k}"));
    }
    let (status, resp) = match r.send_string(body) {
        Ok(resp) => (resp.status(), resp),
        Err(ureq::Error::Status(code, resp)) => (code, resp),
        Err(e) => panic!("{method} {url}: {e}"),
    };
    let allow = resp.header("Allow").map(str::to_string);
    let mut v: Value = resp.into_json().expect("a JSON answer");
    v["allow_header"] = json!(allow);
    (status, v)
}

fn assert_openai_error(status: u16, v: &Value, want: u16, needle: &str) {
    assert_eq!(status, want, "{v}");
    let e = &v["error"];
    let message = e["message"].as_str().expect("error.message");
    assert!(
        message.contains(needle),
        "{message:?} should mention {needle:?}"
    );
    assert!(e["type"].is_string() && e.get("param").is_some() && e.get("code").is_some());
}

#[test]
fn wrong_methods_large_bodies_and_other_media_get_openai_errors() {
    let mut options = options();
    options.api_key = Some("sekret".into());
    options.max_body = Some(1000);
    let server = start(&options, || tiny_engine(EngineKind::Seed, 64, true));
    let base = server.base_url();
    let url = format!("{base}/completions");
    let key = Some("sekret");
    let json = Some("application/json");
    let good = r#"{"prompt": "abc", "max_tokens": 4}"#;

    let (status, v) = send("GET", &url, None, "", key);
    assert_openai_error(status, &v, 405, "POST");
    assert_eq!(v["allow_header"], "POST");
    let (status, v) = send("DELETE", &format!("{base}/models"), None, "", key);
    assert_openai_error(status, &v, 405, "GET");

    let big = json!({"prompt": "a".repeat(2000), "max_tokens": 4}).to_string();
    let (status, v) = send("POST", &url, json, &big, key);
    assert_openai_error(status, &v, 413, "1000 bytes");

    for t in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let (status, v) = send("POST", &url, t, good, key);
        assert_openai_error(status, &v, 415, "application/json");
    }
    let (status, v) = send(
        "POST",
        &url,
        Some("Application/JSON; charset=utf-8"),
        good,
        key,
    );
    assert_eq!(status, 200, "{v}");

    let (status, v) = send("POST", &url, json, good, Some("sekret2"));
    assert_openai_error(status, &v, 401, "API key");
    let (status, v) = send("POST", &url, json, good, Some("sekre"));
    assert_openai_error(status, &v, 401, "API key");

    // Dividing by so small a temperature overflows; it decodes greedily.
    let text_at = |temperature: &str| {
        let body =
            format!(r#"{{"prompt": "abc", "max_tokens": 12, "temperature": {temperature}}}"#);
        let (status, v) = send("POST", &url, json, &body, key);
        assert_eq!(status, 200, "{v}");
        v["choices"][0]["text"].as_str().unwrap().to_string()
    };
    let greedy = text_at("0");
    assert!(!greedy.is_empty());
    assert_eq!(text_at("1e-40"), greedy);
    server.shutdown().unwrap();
}

/// Lets this process open `want` files if the hard limit allows; returns
/// how many it may open.
#[cfg(unix)]
fn raise_open_files(want: u64) -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write `limit`.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        if limit.rlim_cur < want {
            limit.rlim_cur = want.min(limit.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        }
    }
    limit.rlim_cur
}

/// Reads until the server closes the connection; panics past `limit`.
fn read_until_closed(stream: &mut std::net::TcpStream, limit: Duration) {
    use std::io::Read;
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return,
            Err(e) => panic!("the server kept the connection open: {e}"),
        }
    }
}

#[cfg(unix)]
#[test]
fn half_open_connections_are_closed_after_the_header_timeout() {
    use std::io::Write;
    use std::net::TcpStream;
    // Each connection takes a descriptor here and one in the server.
    let files = raise_open_files(4096);
    let count = 1000.min((files.saturating_sub(200) / 2) as usize);
    if count < 1000 {
        eprintln!("only {count} connections: this process may open {files} files");
    }
    let mut options = options();
    options.header_timeout = Duration::from_secs(1);
    let server = start(&options, || tiny_engine(EngineKind::Ar, 64, false));
    let url = format!("{}/completions", server.base_url());
    let started = Instant::now();
    let mut half_open: Vec<TcpStream> = (0..count)
        .map(|_| {
            let mut s = TcpStream::connect(server.addr()).unwrap();
            s.write_all(b"POST /v1/comp").unwrap();
            s
        })
        .collect();
    // A client that finished a request and then idles is closed too.
    let mut idle = TcpStream::connect(server.addr()).unwrap();
    write!(idle, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    // The server answers the others meanwhile.
    let v = post(&url, &json!({"prompt": "abc", "max_tokens": 4}));
    check_response(&v, false, 1);
    for s in &mut half_open {
        read_until_closed(s, Duration::from_secs(20));
    }
    read_until_closed(&mut idle, Duration::from_secs(20));
    let took = started.elapsed();
    assert!(took < Duration::from_secs(20), "closing took {took:?}");
    drop(half_open);
    let v = post(&url, &json!({"prompt": "abc", "max_tokens": 4}));
    check_response(&v, false, 1);
    server.shutdown().unwrap();
}

/// Sends a streaming request on a raw connection and waits for its first
/// bytes; the caller then stops reading.
fn start_stalled_stream(
    addr: std::net::SocketAddr,
    path: &str,
    body: &Value,
) -> std::net::TcpStream {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let body = body.to_string();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut first = [0u8; 1024];
    let n = s.read(&mut first).unwrap();
    assert!(
        String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&first[..n])
    );
    s
}

#[test]
fn shutdown_cancels_a_stalled_stream_and_answers_queued_requests_503_after_the_drain_deadline() {
    let mut options = options();
    options.drain_timeout = Duration::from_secs(1);
    options.limits.max_branches = 1;
    let server = start(&options, || endless_engine(EngineKind::Ar));
    let url = format!("{}/completions", server.base_url());
    let body = json!({"prompt": "abc", "max_tokens": 900_000, "stream": true});
    let mut stalled = start_stalled_stream(server.addr(), "/v1/completions", &body);
    std::thread::scope(|scope| {
        let queued = scope.spawn(|| post_raw(&url, r#"{"prompt": "b", "max_tokens": 3}"#, None));
        wait_for_health(&server, |h| h["in_flight"] == 1 && h["queued"] == 1);
        let started = Instant::now();
        server.shutdown().unwrap();
        let took = started.elapsed();
        // The deadline, a second for the 503s to go out, and some slack.
        assert!(took < Duration::from_secs(6), "shutdown took {took:?}");
        let (status, v) = queued.join().unwrap();
        assert_openai_error(status, &v, 503, "shutting down");
    });
    // The stream ends (with the cancellation, if its buffers had room).
    read_until_closed(&mut stalled, Duration::from_secs(10));
}

/// The binary on SmolLM2 with `--drain-timeout 1`: SIGTERM with a stream
/// whose client reads nothing exits within the deadline, not never.
#[cfg(unix)]
#[test]
fn the_binary_exits_on_sigterm_within_the_drain_deadline_with_a_stalled_stream() {
    let _lock = common::REAL_MODEL_LOCK.lock();
    let model = common::smollm_path().display().to_string();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_seed"))
        .args(["serve", "--engine", "ar", "--target", &model, "--port", "0"])
        .args(["--ctx", "2048", "--drain-timeout", "1"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let addr: std::net::SocketAddr = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("http://"))
        .and_then(|w| w.strip_suffix("/v1"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .parse()
        .unwrap();
    // Four long samples: far more than a second of work.
    let body = json!({"prompt": "Once upon a time", "n": 4, "max_tokens": 240, "stream": true});
    let stalled = std::panic::catch_unwind(|| start_stalled_stream(addr, "/v1/completions", &body));
    let Ok(mut stalled) = stalled else {
        let _ = child.kill();
        panic!("the streaming request failed");
    };
    let started = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success(), "exit status after SIGTERM");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "exiting took {took:?}");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert!(rest.contains("shutting down"), "{rest}");
    // The stream was cut short, not finished.
    let mut streamed = String::new();
    let _ = std::io::Read::read_to_string(&mut stalled, &mut streamed);
    assert!(
        streamed.contains("shutting down") || !streamed.contains("[DONE]"),
        "{streamed}"
    );
}

#[test]
fn a_body_that_stops_arriving_gets_408_after_the_idle_timeout() {
    use std::io::{Read, Write};
    let mut options = options();
    options.idle_timeout = Duration::from_secs(1);
    let server = start(&options, || tiny_engine(EngineKind::Ar, 64, false));
    let mut s = std::net::TcpStream::connect(server.addr()).unwrap();
    write!(
        s,
        "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: 100\r\n\r\n{{\"prompt\": "
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let started = Instant::now();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_openai_error(408, &body, 408, "did not arrive");
    server.shutdown().unwrap();
}

/// Caps a socket's receive buffer, so that a client that reads nothing
/// soon stops the server's writes.
#[cfg(unix)]
fn shrink_receive_buffer(s: &std::net::TcpStream) {
    use std::os::fd::AsRawFd;
    let size: libc::c_int = 4096;
    // SAFETY: setsockopt reads `size` for its length; the descriptor is open.
    let set = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(set, 0, "setsockopt SO_RCVBUF");
}

#[cfg(unix)]
#[test]
fn a_client_that_stops_reading_a_stream_is_cut_off_after_the_idle_timeout() {
    use std::io::{Read, Write};
    let mut options = options();
    options.idle_timeout = Duration::from_secs(1);
    // Undelayed, so that it soon fills the socket's buffers.
    let server = start(&options, || {
        endless_engine_with_delay(EngineKind::Ar, Duration::ZERO)
    });
    let mut s = std::net::TcpStream::connect(server.addr()).unwrap();
    shrink_receive_buffer(&s);
    let started = Instant::now();
    let body = json!({"prompt": "abc", "n": 3, "max_tokens": 900_000, "stream": true}).to_string();
    write!(
        s,
        "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut first = [0u8; 16];
    s.read_exact(&mut first).unwrap();
    assert!(
        first.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&first)
    );
    // The client reads nothing more: the server's writes stall, then it
    // closes the connection and the request is cancelled.
    let h = wait_for_health(&server, |h| h["cancelled"] == 1 && h["live_branches"] == 0);
    assert_eq!(h["target_sequences"], 0, "{h}");
    // Cut off soon after its writes stalled, not when the stream ends (never).
    assert!(started.elapsed() < Duration::from_secs(30));
    server.shutdown().unwrap();
}
