//! rten (production) vs tract-onnx (the design's original engine) vs onnxruntime (the PyPI
//! wheel a Python user would pick), in one run on the same bundled int8 MiniLM and the same
//! token ids: load time (median of 5: rten from the binary's static bytes, tract and
//! onnxruntime from the files in `models/minilm/`, page-cached), first run after load, warm P50/P99 at
//! 8/32/128 tokens (one thread), and the cosine of each engine's pooled embeddings against
//! rten's. rten and tract run in this process; onnxruntime in a child Python process
//! (`ort_bench.py`, its interpreter start not counted), right after them.
//!
//! `cargo bench -p engine-bench`. `TIERWISE_BENCH_ITERS=N` overrides the measured runs per
//! length. The Python with onnxruntime is `TIERWISE_BENCH_PYTHON`, else `models/.venv` (made
//! by `models/build.sh`); without one the onnxruntime column says why it is empty. Without
//! `--bench` each engine runs once as a smoke test. The last line is JSON.

use std::hint::black_box;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
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

    // onnxruntime, in a child process, on the same ids.
    let agreement_ids: Vec<Vec<u32>> = AGREEMENT_TEXTS
        .iter()
        .map(|t| tok.encode(t).map(|e| e.ids))
        .collect::<Result<_, _>>()?;
    let ort = run_ort(&first_ids, &long.ids, iters_override, loads, &agreement_ids);
    let ort_cosines: Vec<f32> = match &ort {
        Ok(o) => agreement_ids
            .iter()
            .zip(&o.agreement)
            .map(|(ids, v)| {
                let a = mean_pool_normalize(&rten_engine.hidden_states(ids)?, ids.len());
                Ok(a.cosine(&tierwise::routing::embed::Embedding(v.clone())))
            })
            .collect::<anyhow::Result<_>>()?,
        Err(_) => Vec::new(),
    };

    // Report.
    let load_r = Stats::of(&rten.load_ms);
    let load_t = tract
        .engine
        .as_ref()
        .ok()
        .map(|_| Stats::of(&tract.load_ms));
    let o = ort.as_ref().ok();
    let load_o = o.map(|o| Stats::of(&o.load_ms_all));
    let ort_at = |n: usize| o.and_then(|o| o.tokens.get(&n.to_string()));
    println!("engine bench: bundled int8 all-MiniLM-L6-v2, single thread, one run");
    if let Err(e) = &ort {
        println!("onnxruntime: no figures ({e})");
    }
    println!();
    println!(
        "{:<22} {:>10} {:>10} {:>10} {:>11} {:>11}",
        "", rten.name, tract.name, "ort", "tract/rten", "ort/rten"
    );
    row(
        &format!("load ms (median of {loads})"),
        load_r.p50,
        load_t.map(|s| s.p50),
        load_o.map(|s| s.p50),
    );
    row(
        "first run ms (8 tok)",
        rten.first_run_ms.unwrap_or(f64::NAN),
        tract.first_run_ms,
        o.map(|o| o.first_run_ms),
    );
    row(
        "cold = load + first",
        load_r.p50 + rten.first_run_ms.unwrap_or(f64::NAN),
        load_t.zip(tract.first_run_ms).map(|(l, f)| l.p50 + f),
        load_o.zip(o).map(|(l, o)| l.p50 + o.first_run_ms),
    );
    for (n, iters, r, t) in &warm {
        row(
            &format!("P50 ms {n} tok ({iters})"),
            r.p50,
            t.map(|s| s.p50),
            ort_at(*n).map(|x| x.p50_ms),
        );
        row(
            &format!("P99 ms {n} tok"),
            r.p99,
            t.map(|s| s.p99),
            ort_at(*n).map(|x| x.p99_ms),
        );
    }
    if !ort_cosines.is_empty() {
        println!();
        println!("pooled-embedding cosine, onnxruntime vs rten (expect > 0.99):");
        for (text, c) in AGREEMENT_TEXTS.iter().zip(&ort_cosines) {
            println!("  {c:.5}  {}", preview(text));
        }
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
    let mut ort_ratios = Map::new();
    if let (Some(l), Some(o)) = (load_o, o) {
        ort_ratios.insert("load".into(), json!(round(l.p50 / load_r.p50)));
        if let Some(rf) = rten.first_run_ms {
            ort_ratios.insert(
                "cold".into(),
                json!(round((l.p50 + o.first_run_ms) / (load_r.p50 + rf))),
            );
        }
        for (n, _, r, _) in &warm {
            if let Some(x) = ort_at(*n) {
                ort_ratios.insert(format!("p50_{n}"), json!(round(x.p50_ms / r.p50)));
            }
        }
    }
    let summary = json!({
        "bench": "engines",
        "model": "all-MiniLM-L6-v2 int8 (DynamicQuantizeLinear + MatMulInteger)",
        "threads": 1,
        "rten": engine_json(&rten, 0),
        "tract": engine_json(&tract, 1),
        "tract_over_rten": Value::Object(ratios),
        "onnxruntime": match &ort {
            Ok(o) => json!({
                "version": o.version,
                "load_ms": load_o.map(|s| round(s.p50)),
                "first_run_ms": round(o.first_run_ms),
                "tokens": o.tokens.iter().map(|(n, x)| (n.clone(), json!({ "runs": x.runs, "p50_ms": round(x.p50_ms), "p99_ms": round(x.p99_ms), "mean_ms": round(x.mean_ms) }))).collect::<Map<_, _>>(),
                "min_cosine_vs_rten": ort_cosines.iter().map(|c| f64::from(*c)).reduce(f64::min).map(round),
            }),
            Err(e) => json!({ "error": e.to_string() }),
        },
        "onnxruntime_over_rten": Value::Object(ort_ratios),
        "cosine": cosines.iter().map(|(_, n, c)| json!({ "tokens": n, "cosine": round(f64::from(*c)) })).collect::<Vec<_>>(),
        "min_cosine": cosines.iter().map(|(_, _, c)| f64::from(*c)).reduce(f64::min).map(round),
    });
    println!("{summary}");
    Ok(())
}

/// One table row: the rten figure, the tract and onnxruntime figures (or `-`), and their
/// ratios to rten.
fn row(label: &str, rten: f64, tract: Option<f64>, ort: Option<f64>) {
    let fig = |x: Option<f64>| x.map_or_else(|| "-".to_string(), |v| format!("{v:.3}"));
    let ratio = |x: Option<f64>| x.map_or_else(|| "-".to_string(), |v| format!("{:.2}x", v / rten));
    println!(
        "{label:<22} {rten:>10.3} {:>10} {:>10} {:>11} {:>11}",
        fig(tract),
        fig(ort),
        ratio(tract),
        ratio(ort)
    );
}

/// What `ort_bench.py` prints.
#[derive(serde::Deserialize)]
struct OrtRun {
    version: String,
    load_ms_all: Vec<f64>,
    first_run_ms: f64,
    tokens: std::collections::BTreeMap<String, OrtTimes>,
    agreement: Vec<Vec<f32>>,
}

#[derive(serde::Deserialize)]
struct OrtTimes {
    runs: usize,
    p50_ms: f64,
    p99_ms: f64,
    mean_ms: f64,
}

/// onnxruntime's figures on the same ids, from `ort_bench.py` in a child process.
fn run_ort(
    first_ids: &[u32],
    long_ids: &[u32],
    iters_override: Option<usize>,
    loads: usize,
    agreement: &[Vec<u32>],
) -> anyhow::Result<OrtRun> {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = match std::env::var_os("TIERWISE_BENCH_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => here.join("../.venv/bin/python"),
    };
    if !python.exists() {
        bail!(
            "no Python with onnxruntime at {} (run models/build.sh, or set TIERWISE_BENCH_PYTHON)",
            python.display()
        );
    }
    let lengths: Vec<Value> = LENGTHS
        .iter()
        .map(|(n, runs)| json!({ "n": n, "ids": cut(long_ids, *n), "runs": iters_override.unwrap_or(*runs) }))
        .collect();
    let request = json!({
        "model": engine_bench::bundled_model_path(),
        "loads": loads,
        "warmup": WARMUP,
        "first_ids": first_ids,
        "lengths": lengths,
        "agreement": agreement,
    });
    let mut child = Command::new(&python)
        .arg(here.join("ort_bench.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", python.display()))?;
    child
        .stdin
        .take()
        .context("child stdin")?
        .write_all(request.to_string().as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "ort_bench.py failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    serde_json::from_slice(&out.stdout).context("reading ort_bench.py's JSON")
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
