//! End-to-end tests of the `tierwise` command-line binary: `route` (decision JSON, tier bounds,
//! argument and request errors), `embed` (a unit 384-float vector) and `eval` (RouteLLM metrics
//! with a recomputable scores file, the `--tiers` mix report, and errors on bad data or tiers),
//! run as child processes on the real binary.

// Helpers outside #[test] functions panic on bad fixtures too; that is what a test wants.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;
use tierwise_tests::export_fixture::routed_record;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/llmrouter_sample.jsonl");
const WEAK: &str = "llama-3.1-8b-instruct";
const STRONG: &str = "llama-3.1-nemotron-51b-instruct";
const TOP: &str = "llama-3.3-nemotron-super-49b-v1";

/// The `tierwise` binary of the same target directory and profile as this test, built (or
/// brought up to date) once per test process: `cargo test -p tierwise-tests` does not build
/// another package's binaries.
fn tierwise_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test executable's path");
        // <target>/<profile>/deps/cli-<hash>
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test executable lives in <target>/<profile>/deps");
        let target_dir = profile_dir.parent().expect("<target>/<profile>");
        let profile = profile_dir
            .file_name()
            .and_then(OsStr::to_str)
            .expect("a profile directory name");
        let bin = profile_dir.join(format!("tierwise{}", std::env::consts::EXE_SUFFIX));

        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "-p", "tierwise", "--bin", "tierwise"])
            .arg("--manifest-path")
            .arg(&manifest)
            .arg("--target-dir")
            .arg(target_dir);
        match profile {
            "debug" => {}
            "release" => {
                cmd.arg("--release");
            }
            other => {
                cmd.args(["--profile", other]);
            }
        }
        let out = cmd.output().expect("running cargo build");
        assert!(
            out.status.success(),
            "cargo build -p tierwise --bin tierwise failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(bin.is_file(), "{} was not built", bin.display());
        bin
    })
}

struct Run {
    success: bool,
    stdout: String,
    stderr: String,
}

fn tierwise<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = Command::new(tierwise_bin())
        .args(args)
        .output()
        .expect("running tierwise");
    Run {
        success: out.status.success(),
        stdout: String::from_utf8(out.stdout).expect("UTF-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("UTF-8 stderr"),
    }
}

/// A fresh, empty scratch directory (no tempfile crate: std::env::temp_dir plus a unique name).
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("tierwise-cli-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creating a scratch dir");
        Scratch(dir)
    }

    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The sample's rows as JSON values.
fn sample_rows() -> Vec<Value> {
    std::fs::read_to_string(DATA)
        .expect("tests/data/llmrouter_sample.jsonl")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a JSON row"))
        .collect()
}

fn score(row: &Value, model: &str) -> Option<f64> {
    row["scores"].get(model).and_then(Value::as_f64)
}

fn assert_close(actual: f64, expected: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= 1e-9,
        "{what}: got {actual}, expected {expected}"
    );
}

fn last_line_json(run: &Run) -> Value {
    let line = run
        .stdout
        .lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or_else(|| panic!("no stdout; stderr:\n{}", run.stderr));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("last line is not JSON ({e}): {line}"))
}

#[test]
fn route_prints_the_decision_json() {
    let run = tierwise(["route", "What is the capital of France?"]);
    assert!(run.success, "stderr:\n{}", run.stderr);
    let d: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", run.stdout));
    for key in tierwise_tests::DECISION_KEYS {
        assert!(d.get(key).is_some(), "missing {key}: {d}");
    }
    let pool = tierwise::routing::pool::PoolConfig::bundled().unwrap();
    let model = d["model"].as_str().unwrap();
    let (tier, _) = pool
        .model(model)
        .unwrap_or_else(|| panic!("{model} is not in the bundled pool"));
    assert_eq!(d["tier"], tier.as_str());
    let by = d["decided_by"].as_str().unwrap();
    assert!(by == "classifier" || by.starts_with("rule:"), "{by}");
    assert!(d["estimated_cost_usd"].as_f64().unwrap() > 0.0);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

#[test]
fn route_respects_max_tier() {
    let query = "Prove that every bounded monotone sequence of real numbers converges, and \
                 derive the completeness of the reals from it with full rigour.";
    for (flag, tier) in [("tier1", "tier1"), ("tier2", "tier2")] {
        let run = tierwise(["route", query, "--min-tier", flag, "--max-tier", flag]);
        assert!(run.success, "stderr:\n{}", run.stderr);
        let d: Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(d["tier"], tier, "{d}");
    }
    let run = tierwise(["route", query, "--max-tier", "tier1"]);
    assert!(run.success, "stderr:\n{}", run.stderr);
    let d: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(d["tier"], "tier1", "{d}");
}

#[test]
fn route_rejects_an_out_of_range_confidence() {
    let run = tierwise(["route", "What is 2 + 2?", "--require-confidence", "2"]);
    assert!(!run.success, "exit 0 with stdout {}", run.stdout);
    assert!(run.stdout.trim().is_empty(), "stdout: {}", run.stdout);
    assert!(
        run.stderr.contains("require_confidence"),
        "stderr: {}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

#[test]
fn route_rejects_an_empty_query_without_panicking() {
    let run = tierwise(["route", ""]);
    assert!(!run.success, "exit 0 with stdout {}", run.stdout);
    assert!(run.stdout.trim().is_empty(), "stdout: {}", run.stdout);
    assert!(run.stderr.contains("empty"), "stderr: {}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

#[test]
fn route_rejects_an_unknown_tier_argument() {
    let run = tierwise(["route", "hello", "--max-tier", "tier7"]);
    assert!(!run.success);
    assert!(run.stdout.trim().is_empty(), "stdout: {}", run.stdout);
    assert!(run.stderr.contains("tier7"), "stderr: {}", run.stderr);
}

#[test]
fn embed_prints_a_unit_vector_of_384_floats() {
    let run = tierwise(["embed", "hello"]);
    assert!(run.success, "stderr:\n{}", run.stderr);
    let v: Vec<f64> = serde_json::from_str(run.stdout.trim())
        .unwrap_or_else(|e| panic!("not a JSON array of numbers ({e}): {}", run.stdout));
    assert_eq!(v.len(), 384);
    assert!(v.iter().all(|x| x.is_finite()));
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() < 1e-3, "L2 norm {norm}");
    assert!(v.iter().any(|x| *x != 0.0));
}

#[test]
fn eval_weak_strong_reports_recomputable_routellm_metrics() {
    let scratch = Scratch::new("eval-weak-strong");
    let scores_out = scratch.path("scores.jsonl");
    let run = tierwise([
        OsStr::new("eval"),
        OsStr::new("--data"),
        OsStr::new(DATA),
        OsStr::new("--weak"),
        OsStr::new(WEAK),
        OsStr::new("--strong"),
        OsStr::new(STRONG),
        OsStr::new("--scores-out"),
        scores_out.as_os_str(),
    ]);
    assert!(run.success, "stderr:\n{}", run.stderr);
    let report = last_line_json(&run);
    let obj = report.as_object().expect("a JSON object");
    for key in [
        "n",
        "weak_acc",
        "strong_acc",
        "apgr",
        "cpt50_pct",
        "cpt80_pct",
    ] {
        assert!(obj.contains_key(key), "missing {key}: {report}");
    }

    // n and the accuracies, from the data.
    let rows = sample_rows();
    let both: Vec<&Value> = rows
        .iter()
        .filter(|r| score(r, WEAK).is_some() && score(r, STRONG).is_some())
        .collect();
    assert!(!both.is_empty());
    assert_eq!(report["n"].as_u64(), Some(both.len() as u64), "{report}");
    let mean = |m: &str| {
        100.0 * both.iter().map(|r| score(r, m).unwrap()).sum::<f64>() / both.len() as f64
    };
    assert_close(report["weak_acc"].as_f64().unwrap(), mean(WEAK), "weak_acc");
    assert_close(
        report["strong_acc"].as_f64().unwrap(),
        mean(STRONG),
        "strong_acc",
    );

    // The scores file: one {"id", "score"} per evaluated prompt.
    let by_id: BTreeMap<&str, &Value> = both
        .iter()
        .map(|r| (r["id"].as_str().unwrap(), *r))
        .collect();
    let text = std::fs::read_to_string(&scores_out).expect("the scores file");
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), both.len());
    let (mut scores, mut weak, mut strong) = (Vec::new(), Vec::new(), Vec::new());
    let mut seen = BTreeSet::new();
    for line in lines {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let id = v["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no string id: {line}"));
        let s = v["score"]
            .as_f64()
            .unwrap_or_else(|| panic!("no numeric score: {line}"));
        assert!((0.0..=1.0).contains(&s), "score {s} outside [0, 1]: {line}");
        assert!(seen.insert(id.to_string()), "id {id} twice");
        let row = by_id
            .get(id)
            .unwrap_or_else(|| panic!("id {id} is not a row of the data"));
        scores.push(s);
        weak.push(score(row, WEAK).unwrap());
        strong.push(score(row, STRONG).unwrap());
    }

    // Anyone can recompute the metrics from the scores file and the data.
    let m = tierwise::offline::scores::routellm_metrics(&scores, &weak, &strong).unwrap();
    assert_eq!(m.n, both.len());
    let apgr = report["apgr"]
        .as_f64()
        .expect("apgr is a number here (the accuracies differ)");
    assert_close(apgr, m.apgr.unwrap(), "apgr");
    for (key, ours) in [("cpt50_pct", m.cpt50_pct), ("cpt80_pct", m.cpt80_pct)] {
        match (report[key].as_f64(), ours) {
            (Some(a), Some(b)) => assert_close(a, b, key),
            (None, None) => assert!(report[key].is_null()),
            (a, b) => panic!("{key}: report {a:?} vs recomputed {b:?}"),
        }
    }
}

#[test]
fn eval_tiers_reports_the_routed_mix() {
    let tiers = format!("tier1={WEAK},tier2={STRONG},tier3={TOP}");
    let run = tierwise(["eval", "--data", DATA, "--tiers", &tiers]);
    assert!(run.success, "stderr:\n{}", run.stderr);
    let report = last_line_json(&run);
    for key in [
        "n",
        "quality",
        "strongest_quality",
        "cost_usd",
        "baseline_cost_usd",
        "savings_pct",
        "tier_mix",
    ] {
        assert!(report.get(key).is_some(), "missing {key}: {report}");
    }
    let rows = sample_rows();
    let usable: Vec<&Value> = rows
        .iter()
        .filter(|r| [WEAK, STRONG, TOP].iter().all(|m| score(r, m).is_some()))
        .collect();
    assert_eq!(report["n"].as_u64(), Some(usable.len() as u64), "{report}");
    let top_mean =
        100.0 * usable.iter().map(|r| score(r, TOP).unwrap()).sum::<f64>() / usable.len() as f64;
    assert_close(
        report["strongest_quality"].as_f64().unwrap(),
        top_mean,
        "strongest_quality",
    );
    let quality = report["quality"].as_f64().unwrap();
    assert!((0.0..=100.0).contains(&quality), "quality {quality}");
    let cost = report["cost_usd"].as_f64().unwrap();
    let base = report["baseline_cost_usd"].as_f64().unwrap();
    assert!(cost > 0.0 && base > 0.0, "{report}");
    assert_close(
        report["savings_pct"].as_f64().unwrap(),
        100.0 * (1.0 - cost / base),
        "savings_pct",
    );

    let mix = report["tier_mix"]
        .as_object()
        .expect("tier_mix is an object");
    let keys: BTreeSet<&str> = mix.keys().map(String::as_str).collect();
    assert!(
        keys.is_subset(&BTreeSet::from(["tier1", "tier2", "tier3"])),
        "{keys:?}"
    );
    let fractions: Vec<f64> = mix.values().map(|v| v.as_f64().unwrap()).collect();
    assert!(
        fractions.iter().all(|f| (0.0..=1.0).contains(f)),
        "{fractions:?}"
    );
    let total: f64 = fractions.iter().sum();
    assert!((total - 1.0).abs() <= 1e-9, "tier_mix sums to {total}");
}

#[test]
fn eval_names_the_file_and_line_of_a_malformed_row() {
    let scratch = Scratch::new("eval-malformed");
    let path = scratch.path("bad.jsonl");
    let good: Vec<String> = std::fs::read_to_string(DATA)
        .unwrap()
        .lines()
        .take(2)
        .map(String::from)
        .collect();
    std::fs::write(
        &path,
        format!("{}\n{}\n{{\"id\": \"x\", \"prompt\"\n", good[0], good[1]),
    )
    .unwrap();
    let run = tierwise([
        OsStr::new("eval"),
        OsStr::new("--data"),
        path.as_os_str(),
        OsStr::new("--weak"),
        OsStr::new(WEAK),
        OsStr::new("--strong"),
        OsStr::new(STRONG),
    ]);
    assert!(!run.success, "exit 0; stdout {}", run.stdout);
    let location = format!("{}:3", path.display());
    assert!(
        run.stderr.contains(&location),
        "stderr does not name {location}: {}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert!(run.stdout.trim().is_empty(), "stdout: {}", run.stdout);
}

#[test]
fn eval_rejects_an_unknown_tier_naming_it() {
    let tiers = format!("tier9={WEAK},tier2={STRONG},tier3={TOP}");
    let run = tierwise(["eval", "--data", DATA, "--tiers", &tiers]);
    assert!(!run.success, "exit 0; stdout {}", run.stdout);
    assert!(run.stderr.contains("tier9"), "stderr: {}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert!(run.stdout.trim().is_empty(), "stdout: {}", run.stdout);
}

/// A cost record of `day` for the export fixtures.
fn export_record(i: u64, day: &str, tenant: &str) -> tierwise::ledger::records::CostRecord {
    let tier = tierwise::routing::pool::Tier::from_index((i % 3) as usize).unwrap();
    tierwise::ledger::records::CostRecord {
        tenant: tenant.into(),
        model: format!("model-{}", tier.as_str()),
        tier,
        predicted_tier: tier,
        escalated: i.is_multiple_of(5),
        cost_usd: tierwise::ledger::money::Usd::from_nanos(1_234 * (i % 7 + 1) as i64),
        baseline_cost_usd: tierwise::ledger::money::Usd::from_nanos(3_125_000),
        ..routed_record(
            &format!("0190c3e0-0000-7000-8000-{i:012}"),
            &format!("{day}T10:00:00.000Z"),
        )
    }
}

#[test]
fn report_reads_a_dynamodb_export_and_renders_json_table_and_html() {
    use tierwise_tests::export_fixture::{ExportWriter, cost_item_json, line};
    let dir = Scratch::new("export-report");
    let mut w = ExportWriter::create(&dir.0, "01764201600000-abcdef01").unwrap();
    let ttl = std::time::Duration::from_secs(86_400);
    let days = ["2026-11-01", "2026-11-02", "2026-11-03"];
    let mut expected_nanos = 0i64;
    let mut expected = 0u64;
    for (f, day) in days.iter().enumerate() {
        let recs: Vec<_> = (0..400u64)
            .map(|i| {
                export_record(
                    f as u64 * 1000 + i,
                    day,
                    if i.is_multiple_of(2) {
                        "acme"
                    } else {
                        "globex"
                    },
                )
            })
            .collect();
        if *day != "2026-11-03" {
            expected += recs.len() as u64;
            expected_nanos += recs.iter().map(|r| r.cost_usd.nanos()).sum::<i64>();
        }
        let lines: Vec<String> = recs.iter().map(|r| line(&cost_item_json(r, ttl))).collect();
        w.data_file(&format!("part-{f}.json.gz"), lines).unwrap();
    }
    w.data_file("empty.json.gz", Vec::<String>::new()).unwrap();
    w.finish().unwrap();

    let root = dir.0.to_str().unwrap();
    let report = |from: &str, to: &str, extra: &[&str]| {
        let args = ["report", "--from", from, "--to", to, "--export", root];
        tierwise(args.iter().chain(extra))
    };
    let run = report("2026-11-01", "2026-11-02", &[]);
    assert!(run.success, "{}", run.stderr);
    let rep: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(rep["queries"], expected);
    let cost = (rep["cost_usd"].as_f64().unwrap() * 1e9).round() as i64;
    assert_eq!(cost, expected_nanos);
    assert_eq!(rep["days"].as_array().unwrap().len(), 2);
    assert!(run.stderr.contains("1200 cost records"), "{}", run.stderr);

    // Without --from/--to the whole export is read: its first to its last day.
    let run = tierwise(["report", "--export", root]);
    assert!(run.success, "{}", run.stderr);
    let whole: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(whole["queries"], 1200);
    assert_eq!(
        (whole["from"].as_str(), whole["to"].as_str()),
        (Some("2026-11-01"), Some("2026-11-03"))
    );
    // With the table, the range stays required.
    let run = tierwise(["report", "--table", "t"]);
    assert!(!run.success);
    assert!(run.stderr.contains("`from` is required"), "{}", run.stderr);

    let run = report(
        "2026-11-01",
        "2026-11-03",
        &["--tenant", "acme", "--format", "table"],
    );
    assert!(run.success, "{}", run.stderr);
    assert!(run.stdout.contains("600"), "{}", run.stdout);

    let html = dir.path("report.html");
    let run = report(
        "2026-11-01",
        "2026-11-03",
        &["--format", "html", "--out", html.to_str().unwrap()],
    );
    assert!(run.success, "{}", run.stderr);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("<svg") && page.contains("model-tier1"),
        "{}",
        &page[..page.len().min(400)]
    );

    // A corrupt data file: an error naming it, and no report on stdout.
    let part = dir
        .0
        .join("AWSDynamoDB/01764201600000-abcdef01/data/part-1.json.gz");
    let mut bytes = std::fs::read(&part).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&part, bytes).unwrap();
    let run = report("2026-11-01", "2026-11-02", &[]);
    assert!(!run.success);
    assert!(run.stdout.trim().is_empty(), "{}", run.stdout);
    assert!(run.stderr.contains("part-1.json.gz"), "{}", run.stderr);

    // Bad dates are refused before anything is read.
    let run = report("2026-11-05", "2026-11-02", &[]);
    assert!(!run.success);
    assert!(run.stderr.contains("after"), "{}", run.stderr);
}

/// Labelled asks of three kinds (two tiers), enough for a head to separate them.
fn write_exemplars(path: &Path) {
    let rows: Vec<Value> = [
        ("translation", "tier1", "Translate to French: "),
        ("translation", "tier1", "How do you say this in Spanish: "),
        ("translation", "tier1", "Put this into German please: "),
        ("math_proof", "tier3", "Prove rigorously that "),
        ("math_proof", "tier3", "Give a formal proof that "),
        ("math_proof", "tier3", "Show with a complete proof that "),
    ]
    .iter()
    .enumerate()
    .flat_map(|(i, (kind, tier, head))| {
        [
            "the sum of two even numbers is even",
            "there are infinitely many primes",
            "my cat likes the sunny window",
            "the train leaves at nine",
        ]
        .iter()
        .enumerate()
        .map(move |(j, tail)| {
            serde_json::json!({"id": format!("{kind}-{i}-{j}"), "kind": kind, "tier": tier,
                               "prompt": format!("{head}{tail}")})
        })
    })
    .collect();
    let text: String = rows.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(path, text).unwrap();
}

/// The bundled pool without its `[task_kinds]` table (a classifier with other kinds loads with
/// it), plus `extra` at the end.
fn pool_without_kinds(extra: &str) -> String {
    let text = tierwise::routing::pool::PoolConfig::bundled_toml();
    let start = text
        .find("[task_kinds]")
        .expect("the bundled pool has [task_kinds]");
    let end = text
        .find("# Providers, by the name")
        .expect("the providers comment");
    format!("{}{}\n{extra}", &text[..start], &text[end..])
}

/// The whole stdout as JSON (`route` pretty-prints).
fn stdout_json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", run.stdout))
}

#[test]
fn train_writes_an_artifact_that_route_and_eval_load() {
    let scratch = Scratch::new("train");
    let exemplars = scratch.path("asks.jsonl");
    write_exemplars(&exemplars);
    let prices = scratch.path("prices.json");
    std::fs::write(
        &prices,
        format!(r#"{{"{WEAK}": "tier1", "{STRONG}": 0.9, "{TOP}": "tier3"}}"#),
    )
    .unwrap();
    let out = scratch.path("model");
    let run = tierwise([
        OsStr::new("train"),
        OsStr::new("--data"),
        OsStr::new(DATA),
        OsStr::new("--exemplars"),
        exemplars.as_os_str(),
        OsStr::new("--prices"),
        prices.as_os_str(),
        OsStr::new("--out"),
        out.as_os_str(),
    ]);
    assert!(run.success, "stderr:\n{}", run.stderr);
    let artifact = out.join("classifier.json");
    let art: Value = serde_json::from_str(&std::fs::read_to_string(&artifact).unwrap()).unwrap();
    assert_eq!(art["format"], "tierwise-router-v2");
    assert_eq!(
        art["kinds"]["names"],
        serde_json::json!(["math_proof", "translation"])
    );
    assert!(
        art["difficulty_linear"].is_object(),
        "--data retrains difficulty"
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("training.json")).unwrap()).unwrap();
    // Tiers of the data's models: from --prices (a tier, or a price placed by the pool's).
    assert_eq!(report["difficulty"]["model_tiers"][WEAK], "tier1");
    assert_eq!(report["difficulty"]["model_tiers"][STRONG], "tier2");
    assert_eq!(report["kinds"]["rows"], 24);

    // The pool's task table names the 23 default kinds; this classifier has two, so its pool
    // has a table of its own (a kind the classifier does not know is refused, below).
    let pool = scratch.path("pool.toml");
    std::fs::write(&pool, pool_without_kinds("")).unwrap();
    let refused = tierwise([
        OsStr::new("route"),
        OsStr::new("Translate to French: the shop opens at ten"),
        OsStr::new("--classifier"),
        artifact.as_os_str(),
    ]);
    assert!(!refused.success);
    assert!(
        refused
            .stderr
            .contains("is not a kind this classifier knows"),
        "{}",
        refused.stderr
    );

    // The artifact routes: a translation to tier1, a proof to tier3, each kind named.
    for (query, tier, kind) in [
        (
            "Please put this into French: the little shop on the corner opens at ten",
            "tier1",
            "translation",
        ),
        (
            "Prove rigorously that the square root of two is irrational",
            "tier3",
            "math_proof",
        ),
    ] {
        let run = tierwise([
            OsStr::new("route"),
            OsStr::new(query),
            OsStr::new("--classifier"),
            artifact.as_os_str(),
            OsStr::new("--pool"),
            pool.as_os_str(),
            OsStr::new("--require-confidence"),
            OsStr::new("0"),
        ]);
        assert!(run.success, "stderr:\n{}", run.stderr);
        let d = stdout_json(&run);
        assert_eq!(d["task_kind"], kind, "{query}: {d}");
        assert_eq!(d["predicted_tier"], tier, "{query}: {d}");
    }

    // eval on labelled rows reports where each tier's asks went.
    let run = tierwise([
        OsStr::new("eval"),
        OsStr::new("--data"),
        exemplars.as_os_str(),
        OsStr::new("--classifier"),
        artifact.as_os_str(),
        OsStr::new("--pool"),
        pool.as_os_str(),
        OsStr::new("--no-rules"),
        OsStr::new("--threshold"),
        OsStr::new("0"),
    ]);
    assert!(run.success, "stderr:\n{}", run.stderr);
    let r = last_line_json(&run);
    assert_eq!(r["n"], 24, "{r}");
    assert!(r["kind_accuracy_pct"].as_f64().unwrap() >= 90.0, "{r}");
    assert!(r["simple_on_tier1_pct"].as_f64().unwrap() >= 90.0, "{r}");
    assert_eq!(r["complex_on_tier1"], 0, "{r}");
    let total: u64 = r["confusion"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|m| m.as_object().unwrap().values())
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(total, 24);

    // A pool that moves translation to tier2: same artifact, another tier, no retraining.
    std::fs::write(
        &pool,
        pool_without_kinds("[task_kinds]\ntranslation = \"tier2\"\n"),
    )
    .unwrap();
    let run = tierwise([
        OsStr::new("route"),
        OsStr::new("Please put this into French: the little shop on the corner opens at ten"),
        OsStr::new("--classifier"),
        artifact.as_os_str(),
        OsStr::new("--pool"),
        pool.as_os_str(),
    ]);
    assert!(run.success, "stderr:\n{}", run.stderr);
    let d = stdout_json(&run);
    assert_eq!(
        (&d["task_kind"], &d["predicted_tier"]),
        (&"translation".into(), &"tier2".into()),
        "{d}"
    );
}

#[test]
fn train_without_usable_input_fails_with_a_message() {
    let scratch = Scratch::new("train-bad");
    let run = tierwise([
        OsStr::new("train"),
        OsStr::new("--out"),
        scratch.path("m").as_os_str(),
    ]);
    assert!(!run.success);
    assert!(run.stderr.contains("--exemplars"), "{}", run.stderr);
    // Outcome rows whose models have no tier: refused, naming a model and --prices.
    let run = tierwise([
        OsStr::new("train"),
        OsStr::new("--data"),
        OsStr::new(DATA),
        OsStr::new("--out"),
        scratch.path("m").as_os_str(),
    ]);
    assert!(!run.success);
    assert!(
        run.stderr.contains("--prices") && run.stderr.contains(WEAK),
        "{}",
        run.stderr
    );
}

#[test]
fn validate_pool_accepts_the_bundled_pool_and_names_a_bad_field() {
    let scratch = Scratch::new("validate-pool");
    let good = scratch.path("good.toml");
    std::fs::write(&good, tierwise::routing::pool::PoolConfig::bundled_toml()).unwrap();
    let run = tierwise([OsStr::new("validate-pool"), good.as_os_str()]);
    assert!(run.success, "stderr:\n{}", run.stderr);
    assert!(run.stdout.contains("ok"), "{}", run.stdout);

    for (what, from, to, expect) in [
        (
            "unknown kind",
            "summary = \"tier1\"",
            "sumary = \"tier1\"",
            "sumary",
        ),
        (
            "bad tier",
            "summary = \"tier1\"",
            "summary = \"tier9\"",
            "tier9",
        ),
        (
            "negative price",
            "input_usd_per_m = 0.14",
            "input_usd_per_m = -0.14",
            "input_usd_per_m",
        ),
    ] {
        let bad = scratch.path("bad.toml");
        std::fs::write(
            &bad,
            tierwise::routing::pool::PoolConfig::bundled_toml().replacen(from, to, 1),
        )
        .unwrap();
        let run = tierwise([OsStr::new("validate-pool"), bad.as_os_str()]);
        assert!(!run.success, "{what}: accepted");
        assert!(run.stderr.contains(expect), "{what}: {}", run.stderr);
    }
}

#[test]
fn route_names_the_task_kind_of_everyday_asks() {
    // The bundled classifier: an extraction is a cheap kind, a system design an expensive one.
    let run = tierwise([
        "route",
        "Extract the invoice number and the due date from: 'Invoice #A-1932, due 3 May 2026, total EUR 412.50'",
    ]);
    assert!(run.success, "stderr:\n{}", run.stderr);
    let d = stdout_json(&run);
    assert_eq!(d["task_kind"], "extraction", "{d}");
    assert_eq!(d["tier"], "tier1", "{d}");
    let run = tierwise([
        "route",
        "Design a multi-region, strongly consistent rate limiter for 2M requests per second: data model, failure modes, trade-offs",
    ]);
    assert!(run.success, "stderr:\n{}", run.stderr);
    let d = stdout_json(&run);
    assert_eq!(d["task_kind"], "system_design", "{d}");
    assert_eq!(d["tier"], "tier3", "{d}");
}
