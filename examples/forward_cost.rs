//! What one target forward costs by the number of rows it computes, with
//! logits for every row (as verification needs) and for the last row only
//! (as plain prompt processing does): whether speculation can pay on this
//! machine; with MASKED, that many tokens of another sequence sit in the KV
//! cache first, as a prefix cache's do (flash attention skips masked cells).
//! Usage: cargo run --release --example forward_cost -- MODEL.gguf [KV_TOKENS [MASKED]]
use seed::model::llama::{LlamaLm, LlamaOptions};
use seed::model::{BatchToken, Model};
use std::time::Instant;

const ROWS: [usize; 8] = [1, 2, 3, 4, 6, 8, 12, 16];
const REPEATS: usize = 7;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: forward_cost MODEL.gguf [KV_TOKENS [MASKED]]"))?;
    let kv_tokens: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(300);
    let masked: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(0);
    let mut model = LlamaLm::load(std::path::Path::new(&path), &LlamaOptions::default())?;
    let other = model.create()?;
    fill(&mut model, other, masked)?;
    let seq = model.create()?;
    fill(&mut model, seq, kv_tokens)?;
    println!(
        "rows  all logits (ms)  last row's logits (ms)   ({kv_tokens} tokens in the KV cache)"
    );
    for rows in ROWS {
        let mut times = [Vec::new(), Vec::new()];
        for _ in 0..REPEATS {
            for (k, all) in [true, false].into_iter().enumerate() {
                let batch: Vec<BatchToken> = (0..rows)
                    .map(|i| BatchToken {
                        token: 500 + i as u32,
                        pos: kv_tokens + i,
                        seqs: vec![seq],
                        logits: all || i + 1 == rows,
                    })
                    .collect();
                let start = Instant::now();
                model.forward(&batch)?;
                times[k].push(start.elapsed().as_secs_f64() * 1e3);
                model.truncate(seq, kv_tokens)?;
            }
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        println!(
            "{rows:4}  {:16.1}  {:22.1}",
            median(&mut times[0]),
            median(&mut times[1])
        );
    }
    Ok(())
}

/// Feeds `len` filler tokens to `seq`, from position 0, in forwards of 256.
fn fill(model: &mut LlamaLm, seq: seed::model::SeqId, len: usize) -> anyhow::Result<()> {
    let tokens: Vec<BatchToken> = (0..len)
        .map(|pos| BatchToken {
            token: 100 + (pos % 1000) as u32,
            pos,
            seqs: vec![seq],
            logits: pos + 1 == len,
        })
        .collect();
    for chunk in tokens.chunks(256) {
        model.forward(chunk)?;
    }
    Ok(())
}
