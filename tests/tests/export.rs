//! Reading DynamoDB exports (`tierwise::report::export`): the reader against folders written
//! in the export layout (`tierwise_tests::export_fixture`), every problem named with its file
//! and line; and against the real item writers: cost records put as `aws::dynamo::cost_item`
//! writes them and rollups as `aws::dynamo::rollup_update` leaves them, read back exactly
//! (rollups skipped), the fixture's DynamoDB JSON agreeing with `cost_item` attribute for
//! attribute.

// Helpers outside #[test] functions panic on bad fixtures too; that is what a test wants.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use md5::{Digest, Md5};
use serde_json::{Map, Value, json};
use tierwise::aws::dynamo::{cost_item, rollup_update};
use tierwise::ledger::money::{Timestamp, Usd};
use tierwise::ledger::records::{CostRecord, RECORD_COST, RecordStatus};
use tierwise::report::export::{
    EXPORTS_FOLDER, ExportError, ExportSummary, MANIFEST_FILES, MANIFEST_SUMMARY, base64,
    read_export,
};
use tierwise::routing::pool::Tier;
use tierwise_tests::export_fixture::{ExportWriter, cost_item_json, line, routed_record};

const TTL: Duration = Duration::from_secs(90 * 86_400);

/// A fresh scratch directory under the target dir (removed again by the test).
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("tierwise-export-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A DynamoDB item as the export's JSON (the types tierwise writes: S, N, BOOL).
fn to_json(item: &HashMap<String, AttributeValue>) -> Value {
    let mut m = Map::new();
    for (k, v) in item {
        let v = match v {
            AttributeValue::S(s) => json!({ "S": s }),
            AttributeValue::N(n) => json!({ "N": n }),
            AttributeValue::Bool(b) => json!({ "BOOL": b }),
            other => panic!("{k}: unexpected attribute type {other:?}"),
        };
        m.insert(k.clone(), v);
    }
    Value::Object(m)
}

/// The rollup item one `rollup_update` leaves in an empty table.
fn rollup_item(rec: &CostRecord) -> Value {
    let (key, _expr, names, values) = rollup_update(rec, 4);
    let mut item = key;
    for (placeholder, name) in names {
        let value = values[&format!(":{}", &placeholder[1..])].clone();
        item.insert(name, value);
    }
    to_json(&item)
}

/// Records covering the value space: every tier and status, optional upstream latency, zero
/// and large amounts, strings that need JSON escapes.
fn ts(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap()
}

fn records() -> Vec<CostRecord> {
    let base = routed_record(
        "0190c3e0-0000-7000-8000-000000000000",
        "2026-11-28T09:15:42.123Z",
    );
    (0..60u64)
        .map(|i| {
            let mut r = base.clone();
            r.query_id = format!("0190c3e0-0000-7000-8000-{i:012}");
            r.ts = ts(&format!(
                "2026-11-{:02}T23:59:59.{:03}Z",
                1 + i % 30,
                i * 7 % 1000
            ));
            r.tier = Tier::ALL[(i % 3) as usize];
            r.predicted_tier = Tier::ALL[(i / 3 % 3) as usize];
            r.escalated = r.tier > r.predicted_tier;
            r.confidence = [0.0, 1.0, 0.5, 0.123456][(i % 4) as usize];
            r.status = [
                RecordStatus::Routed,
                RecordStatus::Ok,
                RecordStatus::UpstreamError,
            ][(i % 3) as usize];
            r.upstream_ms = (r.status != RecordStatus::Routed).then_some(1234.5 + i as f64);
            r.tokens_estimated = r.status == RecordStatus::Routed;
            r.cost_usd = [0, 85_000, 123_456_789_012, 1].map(Usd::from_nanos)[(i % 4) as usize];
            r.baseline_cost_usd = Usd::from_nanos(r.cost_usd.nanos() * 3);
            r.input_tokens = i * 1000;
            r.router_ms = i as f64 * 0.125;
            r.shadow = i.is_multiple_of(5);
            if i.is_multiple_of(7) {
                r.tenant = "Zürich \"AG\" \\ team\n2".into();
                r.decided_by = tierwise::routing::decision::DecidedBy::Classifier;
            }
            r
        })
        .collect()
}

#[test]
fn fixture_encoder_matches_cost_item() {
    for rec in records() {
        assert_eq!(
            cost_item_json(&rec, TTL),
            to_json(&cost_item(&rec, TTL)),
            "{}",
            rec.query_id
        );
    }
}

#[test]
fn records_written_by_cost_item_read_back_exactly() {
    let root = scratch("roundtrip");
    let recs = records();
    let mut w = ExportWriter::create(&root, "01764547200000-0a1b2c3d")
        .unwrap()
        .s3_prefix("tierwise/exports");
    let mut rollups = 0;
    for (f, chunk) in recs.chunks(25).enumerate() {
        let mut lines = Vec::new();
        for rec in chunk {
            lines.push(line(&to_json(&cost_item(rec, TTL))));
            if rec.query_id.ends_with('0') {
                lines.push(line(&rollup_item(rec)));
                rollups += 1;
            }
        }
        w.data_file(&format!("part{f}.json.gz"), lines).unwrap();
    }
    w.data_file("empty.json.gz", Vec::<String>::new()).unwrap();
    w.finish().unwrap();

    let mut got = Vec::new();
    let summary = read_export(&root, |r| got.push(r)).unwrap();
    assert_eq!(
        summary,
        ExportSummary {
            export_id: "01764547200000-0a1b2c3d".into(),
            files: 4,
            items: recs.len() as u64 + rollups,
            cost_records: recs.len() as u64,
            skipped: rollups,
        }
    );
    assert_eq!(got, recs);
    let nanos = |rs: &[CostRecord]| rs.iter().map(|r| r.cost_usd).sum::<Usd>();
    assert_eq!(nanos(&got), nanos(&recs));
    std::fs::remove_dir_all(&root).unwrap();
}

const ID: &str = "01764547200000-a1b2c3d4";

fn record(i: u64) -> CostRecord {
    let tier = Tier::ALL[(i % 3) as usize];
    CostRecord {
        record: RECORD_COST.into(),
        query_id: format!("0190c3e0-0000-7000-8000-{i:012}"),
        ts: ts(&format!(
            "2026-11-{:02}T12:00:{:02}.123Z",
            1 + i % 28,
            i % 60
        )),
        tenant: format!("tenant-{}", i % 4),
        model: format!("model-{}", i % 5),
        tier,
        predicted_tier: Tier::ALL[((i + 1) % 3) as usize],
        confidence: (i % 1000) as f64 / 1000.0,
        escalated: i.is_multiple_of(7),
        decided_by: if i.is_multiple_of(5) {
            tierwise::routing::decision::DecidedBy::Rule("greeting".into())
        } else {
            tierwise::routing::decision::DecidedBy::Classifier
        },
        task_kind: None,
        input_tokens: 10 + i % 900,
        output_tokens: i % 500,
        tokens_estimated: i.is_multiple_of(2),
        cost_usd: Usd::from_nanos((i * 7919 + 13) as i64),
        baseline_model: "openai/gpt-4o".into(),
        baseline_cost_usd: Usd::from_nanos((i * 104_729 + 1) as i64),
        router_ms: (i % 5000) as f64 / 1000.0,
        upstream_ms: (i % 3 == 1).then_some(100.0 + (i % 977) as f64 / 8.0),
        status: [
            RecordStatus::Routed,
            RecordStatus::Ok,
            RecordStatus::UpstreamError,
        ][(i % 3) as usize],
        shadow: i.is_multiple_of(11),
        pricing_version: "2026-11".into(),
        router_version: "tierwise-0.1.0".into(),
        upstream: None,
    }
}

fn rollup_line() -> String {
    line(&json!({
        "pk": {"S": "ROLLUP#2026-11-01"},
        "sk": {"S": "tenant-0#tier1#model-0#00"},
        "record": {"S": "rollup"},
        "queries": {"N": "12"},
        "cost_usd": {"N": "0.5"},
        "tier": {"S": "tier1"},
    }))
}

/// `n` records over `files` data files (plus an empty one), a rollup item, a blank line
/// and an item with unknown attribute types, under `root`. Returns the records and the
/// export folder.
fn write_export(root: &Path, id: &str, n: u64, files: u64) -> (Vec<CostRecord>, PathBuf) {
    let records: Vec<CostRecord> = (0..n).map(record).collect();
    let mut w = ExportWriter::create(root, id).unwrap();
    let per = n.div_ceil(files) as usize;
    for (f, chunk) in records.chunks(per.max(1)).enumerate() {
        let mut lines: Vec<String> = chunk
            .iter()
            .map(|r| line(&cost_item_json(r, TTL)))
            .collect();
        if f == 0 {
            lines.insert(1.min(lines.len()), rollup_line());
            lines.push(String::new());
            lines.push(line(&json!({
                "pk": {"S": "HEALTH#x"}, "sk": {"S": "h"},
                "tags": {"L": [{"S": "a"}]}, "meta": {"M": {"k": {"N": "1"}}},
                "nothing": {"NULL": true},
            })));
        }
        w.data_file(&format!("file{f}.json.gz"), lines).unwrap();
    }
    w.data_file("empty.json.gz", Vec::<String>::new()).unwrap();
    (records, w.finish().unwrap())
}

fn read_all(dir: &Path) -> Result<(ExportSummary, Vec<CostRecord>), ExportError> {
    let mut got = Vec::new();
    let s = read_export(dir, |r| got.push(r))?;
    Ok((s, got))
}

fn err(dir: &Path) -> String {
    match read_all(dir) {
        Ok(s) => panic!("expected an error, read {:?}", s.0),
        Err(e) => e.to_string(),
    }
}

/// Applies `edit` to the manifest-files.json entry of the data file `name`.
fn edit_entry(export_dir: &Path, name: &str, edit: impl Fn(&mut Value)) {
    let path = export_dir.join(MANIFEST_FILES);
    let text = fs::read_to_string(&path).unwrap();
    let mut out = String::new();
    for l in text.lines() {
        let mut v: Value = serde_json::from_str(l).unwrap();
        if v["dataFileS3Key"].as_str().unwrap().ends_with(name) {
            edit(&mut v);
        }
        out.push_str(&v.to_string());
        out.push('\n');
    }
    fs::write(path, out).unwrap();
}

/// Replaces a data file's bytes, and its manifest md5 so that only the content is wrong.
fn replace_data_file(export_dir: &Path, name: &str, bytes: &[u8]) {
    fs::write(export_dir.join("data").join(name), bytes).unwrap();
    let md5 = base64(&Md5::digest(bytes));
    edit_entry(export_dir, name, |v| v["md5Checksum"] = json!(md5));
}

fn gzip(text: &str) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(text.as_bytes()).unwrap();
    e.finish().unwrap()
}

#[test]
fn a_good_export_gives_exactly_the_records_written() {
    let tmp = tempfile::tempdir().unwrap();
    let (written, export_dir) = write_export(tmp.path(), ID, 1000, 3);
    assert!(export_dir.join("_started").is_file());
    let (summary, got) = read_all(tmp.path()).unwrap();
    assert_eq!(
        summary,
        ExportSummary {
            export_id: ID.into(),
            files: 4,
            items: 1002,
            cost_records: 1000,
            skipped: 2,
        }
    );
    assert_eq!(got, written);
    let nanos = |rs: &[CostRecord]| -> (Usd, Usd) {
        rs.iter().fold((Usd::ZERO, Usd::ZERO), |(c, b), r| {
            (c + r.cost_usd, b + r.baseline_cost_usd)
        })
    };
    assert_eq!(nanos(&got), nanos(&written));
    assert!(got.iter().any(|r| r.upstream_ms.is_some()));
    assert!(got.iter().any(|r| r.upstream_ms.is_none()));
}

#[test]
fn dir_may_be_the_root_the_exports_folder_or_the_export_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, export_dir) = write_export(tmp.path(), ID, 50, 2);
    for dir in [
        tmp.path().to_path_buf(),
        tmp.path().join(EXPORTS_FOLDER),
        export_dir.clone(),
    ] {
        let (s, got) = read_all(&dir).unwrap();
        assert_eq!(
            (s.export_id.as_str(), got.len()),
            (ID, 50),
            "{}",
            dir.display()
        );
    }
    // Copied elsewhere, and under an S3 prefix: keys still resolve from AWSDynamoDB/ on.
    let tmp2 = tempfile::tempdir().unwrap();
    let mut w = ExportWriter::create(tmp2.path(), ID)
        .unwrap()
        .s3_prefix("exports/prod");
    w.data_file(
        "a.json.gz",
        (0..5).map(|i| line(&cost_item_json(&record(i), TTL))),
    )
    .unwrap();
    let moved = tmp2.path().join("renamed");
    fs::rename(w.finish().unwrap(), &moved).unwrap();
    let (s, got) = read_all(&moved).unwrap();
    assert_eq!((s.export_id.as_str(), got.len()), ("renamed", 5));
}

#[test]
fn a_missing_manifest_says_where_it_was_expected() {
    let tmp = tempfile::tempdir().unwrap();
    let e = err(tmp.path());
    assert!(e.starts_with("no manifest-summary.json under"), "{e}");
    assert!(
        e.contains("AWSDynamoDB/<export-id>/manifest-summary.json"),
        "{e}"
    );

    let (_, export_dir) = write_export(tmp.path(), ID, 5, 1);
    fs::remove_file(export_dir.join(MANIFEST_SUMMARY)).unwrap();
    let want = export_dir.join(MANIFEST_SUMMARY).display().to_string();
    for dir in [tmp.path(), export_dir.as_path()] {
        let e = err(dir);
        assert!(e.contains(&want), "{e}");
    }
    let e = err(&tmp.path().join("nope"));
    assert!(e.starts_with("cannot read") && e.contains("nope"), "{e}");
}

#[test]
fn several_exports_are_listed() {
    let tmp = tempfile::tempdir().unwrap();
    write_export(tmp.path(), "01700000000000-aaaa", 3, 1);
    write_export(tmp.path(), "01700000000001-bbbb", 3, 1);
    let e = err(tmp.path());
    assert!(e.contains("2 exports"), "{e}");
    assert!(
        e.contains("01700000000000-aaaa, 01700000000001-bbbb"),
        "{e}"
    );
    let one = tmp.path().join(EXPORTS_FOLDER).join("01700000000001-bbbb");
    assert_eq!(read_all(&one).unwrap().1.len(), 3);
}

#[test]
fn corrupt_gzip_names_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, export_dir) = write_export(tmp.path(), ID, 40, 2);
    let name = export_dir.join("data/file1.json.gz");
    let good = fs::read(&name).unwrap();
    let cases: [(&str, Vec<u8>); 4] = [
        ("not gzip", b"this is not gzip".to_vec()),
        ("truncated", good[..good.len() / 2].to_vec()),
        ("flipped", {
            let mut b = good.clone();
            let mid = b.len() / 2;
            b[mid] ^= 0x55;
            b
        }),
        ("trailing garbage", [good.as_slice(), b"garbage"].concat()),
    ];
    for (what, bytes) in cases {
        replace_data_file(&export_dir, "file1.json.gz", &bytes);
        let e = err(tmp.path());
        assert!(
            e.starts_with(&format!("{}: not a valid gzip file", name.display())),
            "{what}: {e}"
        );
    }
    // A 0-byte file is not a (valid, empty) gzip either.
    replace_data_file(&export_dir, "empty.json.gz", b"");
    replace_data_file(&export_dir, "file1.json.gz", &good);
    assert!(err(tmp.path()).contains("empty.json.gz: not a valid gzip file"));
}

/// The error of reading an export of one data file holding `lines`, and that file's path.
fn one_file_error<S: AsRef<str>>(lines: impl IntoIterator<Item = S>) -> (String, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = ExportWriter::create(tmp.path(), ID).unwrap();
    let path = w.data_file("f.json.gz", lines).unwrap();
    w.finish().unwrap();
    (err(tmp.path()), path)
}

#[test]
fn a_bad_json_line_names_file_and_line() {
    let good = line(&cost_item_json(&record(1), TTL));
    let (e, path) = one_file_error([good.as_str(), "", r#"{"Item": {"pk": {"S": "x"}"#]);
    assert!(
        e.starts_with(&format!("{}:3: invalid JSON item", path.display())),
        "{e}"
    );
    assert!(e.contains("column"), "{e}");

    for (bad, want) in [("[1, 2]", "expected"), (r#"{"Keys": {}}"#, "no `Item`")] {
        let (e, path) = one_file_error([bad]);
        assert!(e.starts_with(&format!("{}:1: ", path.display())), "{e}");
        assert!(e.contains(want), "{e}");
    }
}

#[test]
fn attributes_are_required_with_their_types() {
    let cases: [(&str, Value, &str); 6] = [
        ("cost_usd", Value::Null, "has no attribute `cost_usd`"),
        (
            "cost_usd",
            json!({"S": "0.1"}),
            "`cost_usd` is S, expected type N",
        ),
        (
            "escalated",
            json!({"S": "true"}),
            "`escalated` is S, expected type BOOL",
        ),
        (
            "input_tokens",
            json!(5),
            "`input_tokens` is an untyped number",
        ),
        (
            "cost_usd",
            json!({"N": "1e-7"}),
            "`cost_usd` = \"1e-7\" is not a decimal",
        ),
        (
            "tier",
            json!({"S": "tier9"}),
            "`tier` = \"tier9\" is not a tier",
        ),
    ];
    for (attr, value, want) in cases {
        let mut item = cost_item_json(&record(2), TTL);
        if value.is_null() {
            item.as_object_mut().unwrap().remove(attr);
        } else {
            item[attr] = value;
        }
        let (e, path) = one_file_error([
            line(&cost_item_json(&record(1), TTL)),
            rollup_line(),
            line(&item),
        ]);
        assert!(e.starts_with(&format!("{}:3: ", path.display())), "{e}");
        assert!(e.contains(want), "{attr}: {e}");
    }
}

#[test]
fn count_mismatches_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, export_dir) = write_export(tmp.path(), ID, 30, 2);
    edit_entry(&export_dir, "file1.json.gz", |v| {
        v["itemCount"] = json!(v["itemCount"].as_u64().unwrap() + 1);
    });
    let e = err(tmp.path());
    let file = export_dir.join("data/file1.json.gz");
    assert_eq!(
        e,
        format!("{}: 15 items, but the manifest says 16", file.display())
    );

    let tmp = tempfile::tempdir().unwrap();
    let (_, export_dir) = write_export(tmp.path(), ID, 30, 2);
    let path = export_dir.join(MANIFEST_SUMMARY);
    let mut summary: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    summary["itemCount"] = json!(33);
    fs::write(&path, summary.to_string()).unwrap();
    let e = err(tmp.path());
    assert!(e.starts_with(&path.display().to_string()), "{e}");
    assert!(e.contains("32 items in total, but it says 33"), "{e}");
}

#[test]
fn an_md5_mismatch_names_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, export_dir) = write_export(tmp.path(), ID, 30, 2);
    edit_entry(&export_dir, "file0.json.gz", |v| {
        v["md5Checksum"] = json!("1B2M2Y8AsgTpgAmY7PhCfg==");
    });
    let e = err(tmp.path());
    let file = export_dir.join("data/file0.json.gz");
    assert!(e.starts_with(&format!("{}: md5 ", file.display())), "{e}");
    assert!(e.contains("1B2M2Y8AsgTpgAmY7PhCfg=="), "{e}");

    // Another valid gzip in its place (same count): still caught.
    let tmp = tempfile::tempdir().unwrap();
    let (_, export_dir) = write_export(tmp.path(), ID, 30, 2);
    let other = (15..30)
        .map(|i| line(&cost_item_json(&record(i + 1), TTL)) + "\n")
        .collect::<String>();
    fs::write(export_dir.join("data/file1.json.gz"), gzip(&other)).unwrap();
    assert!(err(tmp.path()).contains("file1.json.gz: md5 "));
}

#[test]
fn manifest_problems_name_the_manifest_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, export_dir) = write_export(tmp.path(), ID, 30, 2);
    let manifest = export_dir.join(MANIFEST_FILES);
    let text = fs::read_to_string(&manifest).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.insert(1, "{oops");
    fs::write(&manifest, lines.join("\n")).unwrap();
    let e = err(tmp.path());
    assert!(e.starts_with(&format!("{}:2: ", manifest.display())), "{e}");

    let tmp = tempfile::tempdir().unwrap();
    let (_, export_dir) = write_export(tmp.path(), ID, 30, 2);
    let file = export_dir.join("data/file1.json.gz");
    fs::remove_file(&file).unwrap();
    let want = format!(
        "data file {} is missing (listed in {}:2)",
        file.display(),
        export_dir.join(MANIFEST_FILES).display()
    );
    assert_eq!(err(tmp.path()), want);

    let tmp = tempfile::tempdir().unwrap();
    let (_, export_dir) = write_export(tmp.path(), ID, 3, 1);
    let path = export_dir.join(MANIFEST_SUMMARY);
    fs::write(&path, r#"{"itemCount": 4, "outputFormat": "ION"}"#).unwrap();
    assert!(err(tmp.path()).contains("unsupported export: outputFormat \"ION\""));
    fs::write(&path, r#"{"outputFormat": "DYNAMODB_JSON"}"#).unwrap();
    let e = err(tmp.path());
    assert!(
        e.starts_with(&format!("{}: invalid manifest", path.display())),
        "{e}"
    );
    assert!(e.contains("itemCount"), "{e}");
}
