//! Writes export folders in the layout DynamoDB's export to S3 produces (manifests with
//! counts and md5 checksums, gzip data files, the `_started` marker), and cost records as
//! export items in DynamoDB JSON, laid out by the library's one cost item layout
//! (`tierwise::ledger::records::item::cost_item`). For the export tests and benchmark.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use flate2::Compression;
use flate2::write::GzEncoder;
use md5::{Digest, Md5};
use serde_json::{Map, Value, json};
use tierwise::ledger::money::{Timestamp, Usd};
use tierwise::ledger::records::item::{self, cost_item};
use tierwise::ledger::records::{CostRecord, RECORD_COST, RecordStatus};
use tierwise::report::export::{EXPORTS_FOLDER, MANIFEST_FILES, MANIFEST_SUMMARY, base64};
use tierwise::routing::pool::Tier;

/// Writes one export: data files one at a time, then the manifests.
#[derive(Debug)]
pub struct ExportWriter {
    export_dir: PathBuf,
    export_id: String,
    s3_prefix: Option<String>,
    compression: Compression,
    manifest_lines: Vec<String>,
    items: u64,
    bytes: u64,
}

impl ExportWriter {
    /// Creates `root/AWSDynamoDB/<export_id>/` with its `_started` marker and `data/`.
    pub fn create(root: &Path, export_id: &str) -> io::Result<Self> {
        let export_dir = root.join(EXPORTS_FOLDER).join(export_id);
        fs::create_dir_all(export_dir.join("data"))?;
        File::create(export_dir.join("_started"))?;
        Ok(Self {
            export_dir,
            export_id: export_id.to_string(),
            s3_prefix: None,
            compression: Compression::default(),
            manifest_lines: Vec::new(),
            items: 0,
            bytes: 0,
        })
    }

    /// The S3 prefix the export was written under (it prefixes the manifest's keys).
    pub fn s3_prefix(mut self, prefix: &str) -> Self {
        self.s3_prefix = Some(prefix.trim_end_matches('/').to_string());
        self
    }

    /// The gzip level of the data files (default: 6).
    pub fn compression(mut self, level: u32) -> Self {
        self.compression = Compression::new(level);
        self
    }

    /// What the manifest's S3 keys start with: the prefix and a slash, or nothing.
    fn key_prefix(&self) -> String {
        self.s3_prefix
            .as_deref()
            .map(|p| format!("{p}/"))
            .unwrap_or_default()
    }

    /// `root/AWSDynamoDB/<export_id>`.
    pub fn export_dir(&self) -> &Path {
        &self.export_dir
    }

    /// Writes `data/<name>` (gzip) with `lines`, one per line; every line that is not blank
    /// counts as an item. Returns the file's path.
    pub fn data_file<I>(&mut self, name: &str, lines: I) -> io::Result<PathBuf>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let path = self.export_dir.join("data").join(name);
        let hashed = Md5Writer {
            inner: BufWriter::with_capacity(256 << 10, File::create(&path)?),
            hash: Md5::new(),
        };
        let mut gz = GzEncoder::new(hashed, self.compression);
        let mut items = 0u64;
        for line in lines {
            let line = line.as_ref();
            if !line.trim().is_empty() {
                items += 1;
            }
            gz.write_all(line.as_bytes())?;
            gz.write_all(b"\n")?;
        }
        let mut hashed = gz.finish()?;
        hashed.inner.flush()?;
        let digest = hashed.hash.finalize();
        self.bytes += fs::metadata(&path)?.len();
        self.items += items;
        let prefix = self.key_prefix();
        let key = format!("{prefix}{EXPORTS_FOLDER}/{}/data/{name}", self.export_id);
        let etag: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        self.manifest_lines.push(
            json!({
                "itemCount": items,
                "md5Checksum": base64(&digest),
                "etag": etag,
                "dataFileS3Key": key,
            })
            .to_string(),
        );
        Ok(path)
    }

    /// Writes `manifest-files.json`, `manifest-summary.json` (with the counts of the data
    /// files written) and their `.md5` companions. Returns the export folder.
    pub fn finish(self) -> io::Result<PathBuf> {
        let prefix = self.key_prefix();
        let id = &self.export_id;
        let files = self.manifest_lines.join("\n") + "\n";
        let table = "arn:aws:dynamodb:us-east-1:123456789012:table/tierwise";
        let summary = json!({
            "version": "2020-06-30",
            "exportArn": format!("{table}/export/{id}"),
            "startTime": "2026-12-01T00:00:00.000Z",
            "endTime": "2026-12-01T00:05:00.000Z",
            "tableArn": table,
            "tableId": "00000000-0000-4000-8000-000000000000",
            "exportTime": "2026-12-01T00:00:00.000Z",
            "s3Bucket": "tierwise-exports",
            "s3Prefix": self.s3_prefix,
            "s3SseAlgorithm": "AES256",
            "s3SseKmsKeyId": null,
            "manifestFilesS3Key": format!("{prefix}{EXPORTS_FOLDER}/{id}/{MANIFEST_FILES}"),
            "billedSizeBytes": self.bytes,
            "itemCount": self.items,
            "outputFormat": "DYNAMODB_JSON",
            "exportType": "FULL_EXPORT",
        })
        .to_string();
        for (name, text) in [(MANIFEST_FILES, files), (MANIFEST_SUMMARY, summary)] {
            fs::write(self.export_dir.join(name), &text)?;
            let md5_name = name.replace(".json", ".md5");
            fs::write(
                self.export_dir.join(md5_name),
                base64(&Md5::digest(text.as_bytes())),
            )?;
        }
        Ok(self.export_dir)
    }
}

/// A routed query's cost record (acme, tier 1, a rule's decision), for tests to vary.
pub fn routed_record(query_id: &str, ts: &str) -> CostRecord {
    CostRecord {
        record: RECORD_COST.into(),
        query_id: query_id.into(),
        ts: Timestamp::parse(ts).unwrap_or_else(|| panic!("not RFC 3339: {ts}")),
        tenant: "acme".into(),
        model: "deepseek/deepseek-v3".into(),
        tier: Tier::Tier1,
        predicted_tier: Tier::Tier1,
        confidence: 0.93,
        escalated: false,
        decided_by: tierwise::routing::decision::DecidedBy::Rule("greeting".into()),
        task_kind: None,
        input_tokens: 12,
        output_tokens: 40,
        tokens_estimated: true,
        cost_usd: Usd::from_nanos(85_000),
        baseline_model: "openai/gpt-4o".into(),
        baseline_cost_usd: Usd::from_nanos(3_020_000),
        router_ms: 4.2,
        upstream_ms: None,
        status: RecordStatus::Routed,
        shadow: false,
        pricing_version: "2026-11".into(),
        router_version: "tierwise-0.1.0".into(),
        upstream: None,
    }
}

/// `{"Item": item}` as one export line.
pub fn line(item: &Value) -> String {
    json!({ "Item": item }).to_string()
}

/// The record as an export item (DynamoDB JSON): the attributes and types of the table's
/// item, `pk`/`sk`/`day`/`ttl` included.
pub fn cost_item_json(rec: &CostRecord, ttl: Duration) -> Value {
    item_json(cost_item(rec, ttl))
}

/// An item as DynamoDB JSON: `{"name": {"S": "..."}, ...}`.
pub fn item_json(item: item::Item) -> Value {
    let map: Map<String, Value> = item
        .into_iter()
        .map(|(name, v)| (name.to_string(), value_json(v)))
        .collect();
    Value::Object(map)
}

fn value_json(v: item::Value) -> Value {
    match v {
        item::Value::S(s) => json!({ "S": s }),
        item::Value::N(n) => json!({ "N": n }),
        item::Value::Bool(b) => json!({ "BOOL": b }),
        item::Value::L(l) => json!({ "L": l.into_iter().map(value_json).collect::<Vec<_>>() }),
        item::Value::M(m) => json!({ "M": item_json(m) }),
    }
}

/// Hashes (md5) the bytes written through it.
struct Md5Writer<W> {
    inner: W,
    hash: Md5,
}

impl<W: Write> Write for Md5Writer<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(buf.get(..n).unwrap_or_default());
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
