//! Routing-decision benchmark (`cargo bench -p tierwise --bench route`): warm latency of the
//! whole decision (tokenize + embed + rules + trees + policy) at 8 / 32 / 128 / 256 tokens, and
//! of the part beyond the embedding (feature statistics + trees + calibration, and rules),
//! measured in the same run so the two read as a ratio; and what the API-key check adds to a
//! request (a cached key: hash and compare, no store call), as a ratio to the 32-token
//! decision of the same run. Single thread; last line is JSON.

use std::hint::black_box;
use std::time::Instant;

use benchkit::{Stats, ms, round};
use serde_json::json;
use tierwise::routing::classifier::TierClassifier;
use tierwise::routing::decision::{AllHealthy, RouteRequest, Router};
use tierwise::routing::features::{ROUTER_WINDOW, feature_vector, featurize};
use tierwise::routing::pool::PoolConfig;
use tierwise::routing::rules::{QueryFacts, Rules};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TEXT: &str = "Summarise the following customer message and say whether it needs a refund: \
    I ordered the blue jacket in size medium three weeks ago, paid with my credit card, and the \
    parcel arrived yesterday with a red jacket in size large inside. The return label in the box \
    is for a different address. I have attached photos of the label and the jacket. Please tell \
    me how to send it back and whether I will be charged again for the correct item, because \
    my bank already shows the payment as completed and I do not want to pay twice for one order. \
    I also asked your chat assistant on Monday and it said someone would email me within a day, \
    but nobody did, so I am writing again and would appreciate a quick answer this time.";

fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let full_bench = std::env::args().any(|a| a == "--bench");
    let runs = |n: usize| if full_bench { n } else { 2 };
    let router = Router::bundled()?;
    let tok = router.embedder().tokenizer().clone();
    let words: Vec<&str> = TEXT.split_whitespace().collect();
    let mut out = serde_json::Map::new();
    println!(
        "{:>7} {:>9} {:>9} {:>12} {:>12}",
        "tokens", "route P50", "route P99", "embed P50", "beyond P50"
    );
    for (target, iters) in [(8usize, 300usize), (32, 300), (128, 150), (256, 80)] {
        // Grow a prefix of the text (repeated as needed) to the token count.
        let mut text = String::new();
        let mut i = 0;
        while tok.count(&text)? < target {
            text.push_str(words[i % words.len()]);
            text.push(' ');
            i += 1;
        }
        let req = RouteRequest::query(text.clone());
        let time = |f: &mut dyn FnMut() -> anyhow::Result<()>| -> anyhow::Result<Stats> {
            for _ in 0..runs(20) {
                f()?;
            }
            let mut t = Vec::new();
            for _ in 0..runs(iters) {
                let s = Instant::now();
                f()?;
                t.push(ms(s));
            }
            Ok(Stats::of(&t))
        };
        let route = time(&mut || {
            black_box(router.route(black_box(&req), &AllHealthy)?);
            Ok(())
        })?;
        let embed = time(&mut || {
            black_box(featurize(router.embedder(), black_box(&text))?);
            Ok(())
        })?;
        let tokens = tok.count(&text)?;
        out.insert(
            target.to_string(),
            json!({"tokens": tokens, "route_p50_ms": round(route.p50), "route_p99_ms": round(route.p99),
                   "embed_p50_ms": round(embed.p50), "beyond_embedding_p50_ms": round(route.p50 - embed.p50)}),
        );
        println!(
            "{tokens:>7} {:>9.3} {:>9.3} {:>12.3} {:>12.3}",
            route.p50,
            route.p99,
            embed.p50,
            route.p50 - embed.p50
        );
    }
    // The parts beyond the embedding, timed directly.
    let classifier = TierClassifier::bundled()?;
    let rules = Rules::from_table(&PoolConfig::bundled()?.rules)?;
    let q = router.embedder().embed_window(TEXT, ROUTER_WINDOW)?;
    let n = runs(20_000);
    let s = Instant::now();
    for _ in 0..n {
        let f = feature_vector(black_box(&q.embedding.0), black_box(TEXT), q.total_tokens);
        black_box(classifier.predict(&f));
        black_box(rules.apply(&QueryFacts {
            text: black_box(TEXT),
            tokens: q.total_tokens,
        }));
    }
    let beyond_us = ms(s) * 1e3 / n as f64;
    println!(
        "features + trees + calibration + rules: {beyond_us:.1} us per decision (mean of {n})"
    );
    let key_us = key_check_us(n)?;
    let route32 = out
        .get("32")
        .and_then(|v| v["route_p50_ms"].as_f64())
        .unwrap_or(f64::NAN);
    println!(
        "API-key check (cached key): {key_us:.2} us per request = {:.4} of a 32-token decision",
        key_us / (route32 * 1e3)
    );
    println!(
        "{}",
        json!({"bench": "route", "lengths": out, "beyond_embedding_direct_us": round(beyond_us),
               "key_check_us": round(key_us), "key_check_over_route_32": round(key_us / (route32 * 1e3))})
    );
    Ok(())
}

/// Mean time of the API-key check of a request whose key is cached (the usual case: each
/// instance reads a key from the table once a minute): parse, SHA-256, compare.
fn key_check_us(n: usize) -> anyhow::Result<f64> {
    use tierwise::access::guard::Guard;
    use tierwise::access::key::{KeyLimits, KeyRecord, generate};
    use tierwise::access::store::{KeyStore, MemoryKeyStore};
    use tierwise::ledger::money::Timestamp;
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    rt.block_on(async {
        let store = MemoryKeyStore::new();
        let key = generate()?;
        let rec = KeyRecord::new(&key, "bench", false, KeyLimits::default(), Timestamp::now());
        store.create(&rec).await?;
        let guard = Guard::new(store);
        let auth = format!("Bearer {}", key.text);
        guard.authenticate(Some(&auth), 0).await?;
        let s = Instant::now();
        for _ in 0..n {
            black_box(guard.authenticate(black_box(Some(&auth)), 1).await?);
        }
        Ok(ms(s) * 1e3 / n as f64)
    })
}
