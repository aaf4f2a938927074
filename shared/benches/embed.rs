//! Warm latency of the production embedder (`Embedder::bundled()`, rten, one thread) at
//! 8, 32, 128 and 256 tokens, with a naive 256x256 f32 matmul as a same-run CPU yardstick so
//! the figures can be read as ratios on a noisy machine.
//!
//! `cargo bench -p tierwise --bench embed [-- FILTER]`: FILTER keeps the lengths whose name
//! (`embed/8`, `embed/32`, ...) contains it. `TIERWISE_BENCH_ITERS=N` overrides the measured
//! runs per length (defaults 300/300/150/80). Without `--bench` (e.g. `cargo test --benches`)
//! each length runs once as a smoke test. The last line of output is one JSON object.
//! `TIERWISE_BENCH_COMPARE_MODEL=model.onnx` also times that model (same tokenizer, rten),
//! alternating run by run with the bundled one, and reports its P50 over the bundled P50
//! (`compare`): a same-run ratio for a model change on a noisy machine.

use std::hint::black_box;
use std::time::Instant;

use anyhow::{Context, bail};
use benchkit::{Stats, cut, ms, round};
use serde_json::{Map, Value, json};
use tierwise::routing::embed::Embedder;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Lengths measured (tokens including `[CLS]`/`[SEP]`) and their default measured runs.
const LENGTHS: [(usize, usize); 4] = [(8, 300), (32, 300), (128, 150), (256, 80)];
const WARMUP: usize = 20;
/// Yardstick samples taken before and again after the embedder runs.
const YARDSTICK_RUNS: usize = 30;
const YARDSTICK_N: usize = 256;

/// A long, ordinary user prompt (well over 256 word pieces) that the queries are cut from.
const TEXT: &str = "I'm planning a two-week trip to Japan in late October with my partner and \
our two kids, who are eight and eleven. We land in Tokyo on a Saturday morning and fly home \
from Osaka. Could you suggest a day-by-day itinerary that balances big sights with quieter \
days, keeps train rides under three hours, and avoids hotels that change every night? We \
would like to see Kyoto's temples, spend a day at a theme park, try a cooking class, and \
maybe visit a hot spring town in the mountains. Our budget is moderate: we can splurge on \
one or two nights in a traditional inn, but otherwise prefer business hotels near major \
stations. Please also explain whether a nationwide rail pass still makes sense after the \
recent price increase, how to handle luggage forwarding between cities, what to pack for \
the weather in autumn, and which restaurants are friendly to a child with a peanut allergy. \
Finally, list a few phrases we should learn, typical costs for meals and local transport, \
and any etiquette rules that visitors often get wrong, such as tipping, shoes indoors, \
eating while walking, and talking on the phone in trains. If there are seasonal festivals \
or autumn foliage spots worth a detour during those dates, mention them and say how crowded \
they usually get on weekends compared with weekdays.";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        return Ok(());
    }
    let bench_mode = args.iter().any(|a| a == "--bench");
    let filters: Vec<&str> = args
        .iter()
        .filter(|a| !a.starts_with('-'))
        .map(String::as_str)
        .collect();
    let iters_override = benchkit::iters_override().map_err(anyhow::Error::msg)?;

    let load_start = Instant::now();
    let embedder = Embedder::bundled().context("loading the bundled embedder")?;
    let load_ms = ms(load_start);
    let other = match std::env::var_os("TIERWISE_BENCH_COMPARE_MODEL") {
        Some(path) => Some(Embedder::new(
            embedder.tokenizer().clone(),
            Box::new(
                tierwise::routing::embed::rten_engine::RtenEngine::from_file(
                    std::path::Path::new(&path),
                )?,
            ),
        )),
        None => None,
    };
    let full = embedder
        .tokenizer()
        .encode(TEXT)
        .context("tokenizing the text")?;
    let max_len = LENGTHS.iter().map(|(n, _)| *n).max().unwrap_or(0);
    if full.ids.len() < max_len {
        bail!("bench text has {} tokens, needs {max_len}", full.ids.len());
    }

    let selected: Vec<(usize, usize)> = LENGTHS
        .into_iter()
        .filter(|(n, _)| {
            let name = format!("embed/{n}");
            filters.is_empty() || filters.iter().any(|f| name.contains(f))
        })
        .collect();

    if !bench_mode {
        for &(n, _) in &selected {
            let ids = cut(&full.ids, n);
            let e = embedder.embed_ids(&ids)?;
            println!("embed/{n}: ok ({} dims)", e.0.len());
        }
        return Ok(());
    }

    let (a, b) = matrices();
    let yard_before = sample(YARDSTICK_RUNS, 3, || {
        black_box(matmul(black_box(&a), black_box(&b)));
        Ok(())
    })?;

    let mut rows = Vec::new();
    let mut compare = Map::new();
    for &(n, default_iters) in &selected {
        let ids = cut(&full.ids, n);
        if ids.len() != n {
            bail!("built {} ids for a {n}-token query", ids.len());
        }
        let iters = iters_override.unwrap_or(default_iters);
        let (mut own, mut other_times) = (Vec::new(), Vec::new());
        let sampled = sample(iters, WARMUP, || {
            let t = Instant::now();
            black_box(embedder.embed_ids(black_box(&ids))?);
            own.push(ms(t));
            if let Some(o) = &other {
                let t = Instant::now();
                black_box(o.embed_ids(black_box(&ids))?);
                other_times.push(ms(t));
            }
            Ok(())
        })?;
        // With a second model each run times both: keep the bundled model's own time (the
        // warm-up runs are timed too: the last `iters`).
        let times = if other.is_some() {
            own[own.len().saturating_sub(iters)..].to_vec()
        } else {
            sampled
        };
        let s = Stats::of(&times);
        if !other_times.is_empty() {
            let o = Stats::of(&other_times[other_times.len().saturating_sub(iters)..]);
            compare.insert(
                n.to_string(),
                json!({"p50_ms": round(o.p50), "p99_ms": round(o.p99), "p50_over_bundled": round(o.p50 / s.p50)}),
            );
        }
        rows.push((n, iters, s));
    }

    let yard_after = sample(YARDSTICK_RUNS, 1, || {
        black_box(matmul(black_box(&a), black_box(&b)));
        Ok(())
    })?;
    let yard = Stats::of(&[yard_before.clone(), yard_after.clone()].concat());
    let (yard_b, yard_a) = (Stats::of(&yard_before), Stats::of(&yard_after));

    println!("tierwise embed bench: Embedder::bundled() (rten int8, 1 thread), warm");
    println!("load (bytes -> ready, first in process): {load_ms:.1} ms");
    println!(
        "yardstick: naive {YARDSTICK_N}x{YARDSTICK_N} f32 matmul P50 {:.3} ms \
         (before {:.3}, after {:.3})",
        yard.p50, yard_b.p50, yard_a.p50
    );
    println!();
    println!(
        "{:>7} {:>6} {:>9} {:>9} {:>9} {:>11} {:>10}",
        "tokens", "runs", "P50 ms", "P99 ms", "mean ms", "ms/tok P50", "P50/yard"
    );
    let mut tokens = Map::new();
    for (n, iters, s) in &rows {
        let per_tok = s.p50 / *n as f64;
        let ratio = s.p50 / yard.p50;
        println!(
            "{n:>7} {iters:>6} {:>9.3} {:>9.3} {:>9.3} {per_tok:>11.4} {ratio:>10.2}",
            s.p50, s.p99, s.mean
        );
        tokens.insert(
            n.to_string(),
            json!({
                "runs": iters,
                "p50_ms": round(s.p50),
                "p99_ms": round(s.p99),
                "mean_ms": round(s.mean),
                "min_ms": round(s.min),
                "ms_per_token_p50": round(per_tok),
                "p50_over_yardstick": round(ratio),
            }),
        );
    }
    let summary = json!({
        "bench": "embed",
        "engine": "rten",
        "threads": 1,
        "warmup": WARMUP,
        "load_ms": round(load_ms),
        "tokens": Value::Object(tokens),
        "yardstick": format!("naive {YARDSTICK_N}x{YARDSTICK_N} f32 matmul"),
        "yardstick_ms": round(yard.p50),
        "yardstick_before_ms": round(yard_b.p50),
        "yardstick_after_ms": round(yard_a.p50),
        "compare": Value::Object(compare),
    });
    println!("{summary}");
    Ok(())
}

/// `warmup` untimed runs, then `runs` runs each timed alone; durations in ms.
fn sample(
    runs: usize,
    warmup: usize,
    mut f: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<Vec<f64>> {
    for _ in 0..warmup {
        f()?;
    }
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        f()?;
        times.push(ms(t));
    }
    Ok(times)
}

/// Two fixed, deterministic `YARDSTICK_N x YARDSTICK_N` matrices.
fn matrices() -> (Vec<f32>, Vec<f32>) {
    let n = YARDSTICK_N * YARDSTICK_N;
    let a = (0..n)
        .map(|i| ((i * 7 + 3) % 17) as f32 / 17.0 - 0.5)
        .collect();
    let b = (0..n)
        .map(|i| ((i * 5 + 1) % 13) as f32 / 13.0 - 0.5)
        .collect();
    (a, b)
}

/// Naive triple-loop matmul (i-k-j order), the pure-CPU yardstick.
fn matmul(a: &[f32], b: &[f32]) -> Vec<f32> {
    let n = YARDSTICK_N;
    let mut c = vec![0f32; n * n];
    for i in 0..n {
        for k in 0..n {
            let aik = a[i * n + k];
            let (brow, crow) = (&b[k * n..(k + 1) * n], &mut c[i * n..(i + 1) * n]);
            for (cj, bj) in crow.iter_mut().zip(brow) {
                *cj += aik * bj;
            }
        }
    }
    c
}
