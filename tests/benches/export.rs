//! Export-reading benchmark (`cargo bench -p tierwise-tests --bench export`): writes a DynamoDB
//! export of `TIERWISE_BENCH_RECORDS` cost records (default 1,000,000; 2,000 when not run by
//! `cargo bench`) over 8 gzip data files in a temp dir, then times, in the same run:
//! - baseline: gunzip the data files and count their lines (the floor for any reader);
//! - `read_export` passing each record to `RollupRow::of_record` and a HashMap sum, as the
//!   report does (and once more with a callback that only counts, to split parse from sum).
//!
//! Prints records/s and the process's peak RSS (`VmHWM`, reset between phases through
//! `/proc/self/clear_refs` when the kernel allows) before and after reading. Generation is not
//! measured. Last line is JSON.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use benchkit::round;
use flate2::bufread::MultiGzDecoder;
use serde_json::json;
use tierwise::ledger::money::{Timestamp, Usd};
use tierwise::ledger::records::{CostRecord, Counters, RECORD_COST, RecordStatus, RollupRow};
use tierwise::report::export::{ExportSummary, read_export};
use tierwise::routing::pool::Tier;
use tierwise_tests::export_fixture::{ExportWriter, cost_item_json, line};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const FILES: u64 = 8;
const TTL: Duration = Duration::from_secs(90 * 86_400);

/// Record `i` of the synthetic traffic: 30 days x 20 tenants x 6 models, varied fields.
fn record(i: u64) -> CostRecord {
    let h = xxhash_rust::xxh3::xxh3_64(&i.to_le_bytes());
    let tier = Tier::ALL[(h % 3) as usize];
    CostRecord {
        record: RECORD_COST.into(),
        query_id: format!(
            "0190c3e0-{:04x}-7{:03x}-8{:03x}-{:012x}",
            (h >> 48) & 0xffff,
            (h >> 36) & 0xfff,
            (h >> 24) & 0xfff,
            i
        ),
        ts: Timestamp::parse(&format!(
            "2026-11-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            1 + i % 30,
            (h >> 8) % 24,
            (h >> 16) % 60,
            (h >> 24) % 60,
            (h >> 32) % 1000
        ))
        .unwrap_or_else(Timestamp::now),
        tenant: format!("tenant-{:02}", (h >> 40) % 20),
        model: format!("provider/model-{}-{}", tier.as_str(), (h >> 44) % 2),
        tier,
        predicted_tier: tier,
        confidence: ((h >> 4) % 1_000_000) as f64 / 1e6,
        escalated: h.is_multiple_of(13),
        decided_by: if h.is_multiple_of(4) {
            tierwise::routing::decision::DecidedBy::rule("greeting")
        } else {
            tierwise::routing::decision::DecidedBy::Classifier
        },
        task_kind: None,
        input_tokens: 20 + (h >> 12) % 4000,
        output_tokens: (h >> 20) % 1500,
        tokens_estimated: h.is_multiple_of(2),
        cost_usd: Usd::from_nanos(((h >> 28) % 20_000_000) as i64),
        baseline_model: "openai/gpt-4o".into(),
        baseline_cost_usd: Usd::from_nanos(((h >> 30) % 90_000_000) as i64),
        router_ms: ((h >> 50) % 40_000) as f64 / 1000.0,
        upstream_ms: (h % 3 == 1).then_some(((h >> 18) % 3_000_000) as f64 / 1000.0),
        status: [
            RecordStatus::Routed,
            RecordStatus::Ok,
            RecordStatus::UpstreamError,
        ][((h >> 6) % 3) as usize],
        shadow: h.is_multiple_of(50),
        pricing_version: "2026-11".into(),
        router_version: "tierwise-0.1.0".into(),
        upstream: None,
    }
}

/// A `kB` field of `/proc/self/status` (`VmHWM`, `VmRSS`); 0 where unavailable.
fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':').map(str::to_owned))
        })
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Resets the peak RSS to the current RSS (Linux >= 4.0); whether it worked.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

type RollupKey = (String, String, Tier, String);

/// The export written for the run.
struct Generated {
    /// Holds the export; removed when dropped.
    tmp: tempfile::TempDir,
    export_dir: PathBuf,
    data_files: Vec<PathBuf>,
    /// Sum of the records' costs.
    want_cost_nanos: i64,
    seconds: f64,
}

/// Writes `records` records over FILES data files (not measured: the expected totals on the
/// side).
fn generate(records: u64) -> anyhow::Result<Generated> {
    let tmp = tempfile::tempdir()?;
    let t = Instant::now();
    let mut writer = ExportWriter::create(tmp.path(), "01764547200000-bench000")?;
    let mut want_cost_nanos = 0i64;
    let per_file = records.div_ceil(FILES);
    let mut data_files = Vec::new();
    for f in 0..FILES {
        let range = (f * per_file).min(records)..((f + 1) * per_file).min(records);
        let lines = range.map(|i| {
            let r = record(i);
            want_cost_nanos += r.cost_usd.nanos();
            line(&cost_item_json(&r, TTL))
        });
        data_files.push(writer.data_file(&format!("part{f:02}.json.gz"), lines)?);
    }
    let export_dir = writer.finish()?;
    Ok(Generated {
        tmp,
        export_dir,
        data_files,
        want_cost_nanos,
        seconds: t.elapsed().as_secs_f64(),
    })
}

/// Gunzips the data files and counts their lines, same buffering as the reader: (lines, bytes
/// of JSON).
fn gunzip_and_count(data_files: &[PathBuf]) -> anyhow::Result<(u64, u64)> {
    let (mut lines, mut json_bytes) = (0u64, 0u64);
    for path in data_files {
        let raw = BufReader::with_capacity(64 << 10, File::open(path)?);
        let mut r = BufReader::with_capacity(256 << 10, MultiGzDecoder::new(raw));
        loop {
            let buf = r.fill_buf()?;
            if buf.is_empty() {
                break;
            }
            lines += buf.iter().filter(|&&b| b == b'\n').count() as u64;
            json_bytes += buf.len() as u64;
            let n = buf.len();
            r.consume(n);
        }
    }
    Ok((lines, json_bytes))
}

/// `read_export` into rollups, as the report does: the summary and the rollup rows.
fn read_into_rollups(dir: &Path) -> anyhow::Result<(ExportSummary, HashMap<RollupKey, Counters>)> {
    let mut rollups: HashMap<RollupKey, Counters> = HashMap::new();
    let summary = read_export(dir, |rec| {
        let row = RollupRow::of_record(&rec);
        rollups
            .entry((row.day, row.tenant, row.tier, row.model))
            .or_default()
            .add(&row.counters);
    })
    .context("reading the export")?;
    Ok((summary, rollups))
}

/// The records to write: TIERWISE_BENCH_RECORDS, or the default of a full or a test run.
fn record_count() -> anyhow::Result<u64> {
    let full_bench = std::env::args().any(|a| a == "--bench");
    Ok(match std::env::var("TIERWISE_BENCH_RECORDS") {
        Ok(v) => match v.parse() {
            Ok(n) if n > 0 => n,
            _ => bail!("TIERWISE_BENCH_RECORDS={v:?} is not a positive integer"),
        },
        Err(_) if full_bench => 1_000_000,
        Err(_) => 2_000,
    })
}

/// Peak RSS (VmHWM, kB) at each step of the run.
struct Peaks {
    start: u64,
    after_generate: u64,
    baseline: u64,
    before_read: u64,
    after_read: u64,
    /// Whether the peak could be reset between phases.
    reset: bool,
}

fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let records = record_count()?;
    let hwm_start = status_kb("VmHWM");

    let generated = generate(records)?;
    let gz_bytes: u64 = (generated.data_files.iter())
        .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum();
    let hwm_after_generate = status_kb("VmHWM");
    println!(
        "generated {records} records in {FILES} files ({:.1} MB gzip) in {:.1} s",
        gz_bytes as f64 / 1e6,
        generated.seconds
    );

    // Baseline: gunzip + count lines.
    let hwm_reset = reset_peak();
    let t = Instant::now();
    let (lines, json_bytes) = gunzip_and_count(&generated.data_files)?;
    let baseline_s = t.elapsed().as_secs_f64();
    let hwm_baseline = status_kb("VmHWM");
    if lines != records {
        bail!("baseline counted {lines} lines, wrote {records}");
    }

    // read_export, counting only.
    let t = Instant::now();
    let mut seen = 0u64;
    let summary = read_export(&generated.export_dir, |_| seen += 1)?;
    let read_noop_s = t.elapsed().as_secs_f64();
    if seen != records || summary.cost_records != records {
        bail!("read {seen} records, wrote {records}");
    }

    // read_export into rollups, as the report does.
    reset_peak();
    let hwm_before_read = status_kb("VmHWM");
    let t = Instant::now();
    let (summary, rollups) = read_into_rollups(generated.tmp.path())?;
    let read_s = t.elapsed().as_secs_f64();
    let hwm_after_read = status_kb("VmHWM");
    let total: Counters = rollups.values().fold(Counters::default(), |mut a, c| {
        a.add(c);
        a
    });
    if total.queries != records || total.cost.nanos() != generated.want_cost_nanos {
        bail!(
            "rollup sums {} records / {} nanos, wrote {records} / {}",
            total.queries,
            total.cost.nanos(),
            generated.want_cost_nanos
        );
    }
    let generate_s = generated.seconds;
    drop(generated);

    let run = Run {
        records,
        files: summary.files,
        gz_bytes,
        json_bytes,
        generate_s,
        baseline_s,
        read_noop_s,
        read_s,
        rollup_rows: rollups.len(),
    };
    let peaks = Peaks {
        start: hwm_start,
        after_generate: hwm_after_generate,
        baseline: hwm_baseline,
        before_read: hwm_before_read,
        after_read: hwm_after_read,
        reset: hwm_reset,
    };
    print_results(&run, &peaks);
    Ok(())
}

/// What the run measured.
struct Run {
    records: u64,
    files: usize,
    gz_bytes: u64,
    json_bytes: u64,
    generate_s: f64,
    baseline_s: f64,
    read_noop_s: f64,
    read_s: f64,
    rollup_rows: usize,
}

fn print_results(r: &Run, p: &Peaks) {
    let rate = |s: f64| r.records as f64 / s;
    let (baseline_s, read_noop_s, read_s) = (r.baseline_s, r.read_noop_s, r.read_s);
    println!(
        "baseline (gunzip + count lines): {baseline_s:.3} s, {:.0} lines/s, {:.0} MB/s of JSON",
        rate(baseline_s),
        r.json_bytes as f64 / 1e6 / baseline_s
    );
    println!(
        "read_export, count only:        {read_noop_s:.3} s, {:.0} records/s ({:.2}x baseline)",
        rate(read_noop_s),
        read_noop_s / baseline_s
    );
    println!(
        "read_export + rollup sum:       {read_s:.3} s, {:.0} records/s ({:.2}x baseline), {} rollup rows",
        rate(read_s),
        read_s / baseline_s,
        r.rollup_rows
    );
    println!(
        "peak RSS (VmHWM, kB): start {}, after generation {}, baseline {}, before read {}, \
         after read {} (peak reset between phases: {})",
        p.start, p.after_generate, p.baseline, p.before_read, p.after_read, p.reset
    );
    println!(
        "{}",
        json!({
            "bench": "export",
            "records": r.records,
            "files": r.files,
            "gz_bytes": r.gz_bytes,
            "json_bytes": r.json_bytes,
            "generate_s": round(r.generate_s),
            "baseline_s": round(baseline_s),
            "baseline_lines_per_s": rate(baseline_s).round(),
            "read_noop_s": round(read_noop_s),
            "read_noop_records_per_s": rate(read_noop_s).round(),
            "read_s": round(read_s),
            "read_records_per_s": rate(read_s).round(),
            "read_vs_baseline": round(read_s / baseline_s),
            "rollup_rows": r.rollup_rows,
            "vmhwm_kb_start": p.start,
            "vmhwm_kb_after_generate": p.after_generate,
            "vmhwm_kb_baseline": p.baseline,
            "vmhwm_kb_before_read": p.before_read,
            "vmhwm_kb_after_read": p.after_read,
            "vmhwm_reset": p.reset,
        })
    );
}
