//! rten (production) vs tract-onnx (the design's original engine), side by side in one
//! process on the same bundled int8 MiniLM and the same inputs: load time (bytes -> ready,
//! median of 5), first run after load, warm P50/P99 at 8/32/128 tokens, and the cosine between
//! the two engines' pooled embeddings. Keeps on record why rten replaced tract.
//!
//! `cargo bench -p engine-bench`. `TIERWISE_BENCH_ITERS=N` overrides the measured runs per
//! length. Without `--bench` each engine runs once as a smoke test. The last line is JSON.

use std::hint::black_box;
use std::time::Instant;

use anyhow::{Context, bail};
use benchkit::{Stats, cut, ms, round};
use engine_bench::TractEngine;
use serde_json::{Map, Value, json};
use tierwise::routing::embed::rten_engine::RtenEngine;
use tierwise::routing::embed::{Engine, WordPiece, mean_pool_normalize};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Lengths measured (tokens including `[CLS]`/`[SEP]`) and their default measured runs.
const LENGTHS: [(usize, usize); 3] = [(8, 100), (32, 100), (128, 40)];
const WARMUP: usize = 10;
const LOADS: usize = 5;

/// Cut to each length; long enough for 128 word pieces.
const LONG_TEXT: &str = "I'm planning a two-week trip to Japan in late October with my partner \
and our two kids, who are eight and eleven. We land in Tokyo on a Saturday morning and fly home \
from Osaka. Could you suggest a day-by-day itinerary that balances big sights with quieter days, \
keeps train rides under three hours, and avoids hotels that change every night? We would like \
to see Kyoto's temples, spend a day at a theme park, try a cooking class, and maybe visit a hot \
spring town in the mountains. Our budget is moderate: we can splurge on one or two nights in a \
traditional inn, but otherwise prefer business hotels near major stations.";

/// Texts whose pooled embeddings the two engines must agree on.
const AGREEMENT_TEXTS: [&str; 5] = [
    "What is the capital of France?",
    "Write a Python function that merges two sorted lists in linear time.",
    "Summarize the causes of the 2008 financial crisis in three bullet points.",
    "hi",
    LONG_TEXT,
];

/// One engine under test: its load times and, once loaded, the engine itself.
struct Candidate {
    name: &'static str,
    load_ms: Vec<f64>,
    engine: Result<Box<dyn Engine>, String>,
    first_run_ms: Option<f64>,
}

impl Candidate {
    /// Loads `LOADS` times (keeping the last), timing each from bytes to ready, then times
    /// the first 8-token run of the fresh engine.
    fn load(
        name: &'static str,
        loads: usize,
        first_ids: &[u32],
        mut make: impl FnMut() -> anyhow::Result<Box<dyn Engine>>,
    ) -> Self {
        let mut load_ms = Vec::new();
        let mut engine = Err("not loaded".to_string());
        for _ in 0..loads {
            let t = Instant::now();
            let e = make();
            load_ms.push(ms(t));
            match e {
                Ok(e) => engine = Ok(e),
                Err(e) => {
                    engine = Err(format!("{e:#}"));
                    break;
                }
            }
        }
        let mut first_run_ms = None;
        if let Ok(e) = &engine {
            let t = Instant::now();
            match e.hidden_states(first_ids) {
                Ok(_) => first_run_ms = Some(ms(t)),
                Err(err) => engine = Err(format!("first run failed: {err}")),
            }
        }
        Self {
            name,
            load_ms,
            engine,
            first_run_ms,
        }
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        return Ok(());
    }
    let bench_mode = args.iter().any(|a| a == "--bench");
    let iters_override = benchkit::iters_override().map_err(anyhow::Error::msg)?;

    let tok = WordPiece::bundled().context("loading the bundled tokenizer")?;
    let long = tok.encode(LONG_TEXT).context("tokenizing")?;
    let max_len = LENGTHS.iter().map(|(n, _)| *n).max().unwrap_or(0);
    if long.ids.len() < max_len {
        bail!("bench text has {} tokens, needs {max_len}", long.ids.len());
    }
    let first_ids = cut(&long.ids, 8);
    let loads = if bench_mode { LOADS } else { 1 };

    // rten first, then tract: each load is timed alone (nothing else runs meanwhile).
    let rten = Candidate::load("rten", loads, &first_ids, || {
        Ok(Box::new(RtenEngine::bundled()?) as Box<dyn Engine>)
    });
    let tract = Candidate::load("tract", loads, &first_ids, || {
        Ok(Box::new(TractEngine::bundled()?) as Box<dyn Engine>)
    });
    let rten_engine = match &rten.engine {
        Ok(e) => e,
        Err(e) => bail!("rten (the production engine) failed: {e}"),
    };
    if let Err(e) = &tract.engine {
        println!("tract-onnx could NOT run the bundled int8 MiniLM: {e}");
        println!("(only rten figures below; no tract numbers are reported)");
    }

    // Agreement: pooled embeddings of the same ids on both engines.
    let mut cosines = Vec::new();
    if let Ok(tract_engine) = &tract.engine {
        for text in AGREEMENT_TEXTS {
            let ids = tok.encode(text)?.ids;
            let a = mean_pool_normalize(&rten_engine.hidden_states(&ids)?, ids.len());
            let b = mean_pool_normalize(&tract_engine.hidden_states(&ids)?, ids.len());
            cosines.push((text, ids.len(), a.cosine(&b)));
        }
    }

    if !bench_mode {
        println!(
            "rten: ok; tract: {}",
            if tract.engine.is_ok() { "ok" } else { "failed" }
        );
        for (text, n, c) in &cosines {
            println!("cosine {c:.5} ({n} tokens) {}", preview(text));
        }
        return Ok(());
    }

    // Warm latency, the two engines measured back to back at each length.
    let mut warm: Vec<(usize, usize, Stats, Option<Stats>)> = Vec::new();
    for (n, default_iters) in LENGTHS {
        let ids = cut(&long.ids, n);
        let iters = iters_override.unwrap_or(default_iters);
        let r = Stats::of(&sample(rten_engine.as_ref(), &ids, iters)?);
        let t = match &tract.engine {
            Ok(e) => Some(Stats::of(&sample(e.as_ref(), &ids, iters)?)),
            Err(_) => None,
        };
        warm.push((n, iters, r, t));
    }

    // Report.
    let load_r = Stats::of(&rten.load_ms);
    let load_t = tract
        .engine
        .as_ref()
        .ok()
        .map(|_| Stats::of(&tract.load_ms));
    println!("engine bench: bundled int8 all-MiniLM-L6-v2, single thread, same process");
    println!();
    println!(
        "{:<22} {:>10} {:>10} {:>12}",
        "", rten.name, tract.name, "tract/rten"
    );
    row(
        &format!("load ms (median of {loads})"),
        load_r.p50,
        load_t.map(|s| s.p50),
    );
    row(
        "first run ms (8 tok)",
        rten.first_run_ms.unwrap_or(f64::NAN),
        tract.first_run_ms,
    );
    row(
        "cold = load + first",
        load_r.p50 + rten.first_run_ms.unwrap_or(f64::NAN),
        load_t.zip(tract.first_run_ms).map(|(l, f)| l.p50 + f),
    );
    for (n, iters, r, t) in &warm {
        row(
            &format!("P50 ms {n} tok ({iters})"),
            r.p50,
            t.map(|s| s.p50),
        );
        row(&format!("P99 ms {n} tok"), r.p99, t.map(|s| s.p99));
    }
    if !cosines.is_empty() {
        println!();
        println!("pooled-embedding cosine, rten vs tract (expect > 0.99):");
        for (text, n, c) in &cosines {
            println!("  {c:.5}  {n:>3} tok  {}", preview(text));
        }
    }

    let engine_json = |c: &Candidate, ix: usize| -> Value {
        match &c.engine {
            Err(e) => {
                json!({ "error": e, "load_ms_attempts": c.load_ms.iter().map(|v| round(*v)).collect::<Vec<_>>() })
            }
            Ok(_) => {
                let mut tokens = Map::new();
                for (n, iters, r, t) in &warm {
                    let s = if ix == 0 { Some(*r) } else { *t };
                    if let Some(s) = s {
                        tokens.insert(
                            n.to_string(),
                            json!({ "runs": iters, "p50_ms": round(s.p50), "p99_ms": round(s.p99), "mean_ms": round(s.mean) }),
                        );
                    }
                }
                json!({
                    "load_ms": round(Stats::of(&c.load_ms).p50),
                    "load_ms_all": c.load_ms.iter().map(|v| round(*v)).collect::<Vec<_>>(),
                    "first_run_ms": c.first_run_ms.map(round),
                    "tokens": Value::Object(tokens),
                })
            }
        }
    };
    let mut ratios = Map::new();
    if let Some(lt) = load_t {
        ratios.insert("load".into(), json!(round(lt.p50 / load_r.p50)));
        if let (Some(tf), Some(rf)) = (tract.first_run_ms, rten.first_run_ms) {
            ratios.insert(
                "cold".into(),
                json!(round((lt.p50 + tf) / (load_r.p50 + rf))),
            );
        }
    }
    for (n, _, r, t) in &warm {
        if let Some(t) = t {
            ratios.insert(format!("p50_{n}"), json!(round(t.p50 / r.p50)));
        }
    }
    let summary = json!({
        "bench": "engines",
        "model": "all-MiniLM-L6-v2 int8 (DynamicQuantizeLinear + MatMulInteger)",
        "threads": 1,
        "rten": engine_json(&rten, 0),
        "tract": engine_json(&tract, 1),
        "tract_over_rten": Value::Object(ratios),
        "cosine": cosines.iter().map(|(_, n, c)| json!({ "tokens": n, "cosine": round(f64::from(*c)) })).collect::<Vec<_>>(),
        "min_cosine": cosines.iter().map(|(_, _, c)| f64::from(*c)).reduce(f64::min).map(round),
    });
    println!("{summary}");
    Ok(())
}

/// One table row: the rten figure, the tract figure (or `-`), and their ratio.
fn row(label: &str, rten: f64, tract: Option<f64>) {
    match tract {
        Some(t) => println!("{label:<22} {rten:>10.3} {t:>10.3} {:>11.2}x", t / rten),
        None => println!("{label:<22} {rten:>10.3} {:>10} {:>12}", "-", "-"),
    }
}

/// `WARMUP` untimed runs, then `runs` runs each timed alone; durations in ms.
fn sample(engine: &dyn Engine, ids: &[u32], runs: usize) -> anyhow::Result<Vec<f64>> {
    for _ in 0..WARMUP {
        black_box(engine.hidden_states(black_box(ids))?);
    }
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        black_box(engine.hidden_states(black_box(ids))?);
        times.push(ms(t));
    }
    Ok(times)
}

fn preview(text: &str) -> String {
    let mut p: String = text.chars().take(48).collect();
    if p.len() < text.len() {
        p.push_str("...");
    }
    p
}
