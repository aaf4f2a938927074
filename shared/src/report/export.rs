//! Reads the cost records out of a DynamoDB "export to S3" of the tierwise table
//! (`DYNAMODB_JSON` format, full export), copied to a local folder.
//!
//! Layout, under the folder the S3 prefix was copied to:
//!
//! ```text
//! AWSDynamoDB/<export-id>/_started                 (empty marker)
//! AWSDynamoDB/<export-id>/manifest-summary.json    (one object: itemCount, outputFormat, ...)
//! AWSDynamoDB/<export-id>/manifest-files.json      (JSON lines: itemCount, md5Checksum, dataFileS3Key)
//! AWSDynamoDB/<export-id>/data/<name>.json.gz      (gzip, JSON lines: {"Item": {...}})
//! ```
//!
//! [`read_export`] streams every data file (constant memory in the export's size), checks each
//! file's md5 and item count against the manifest and the total against the summary, and
//! passes each cost record (`record = "cost"`) to a callback; other items (rollups,
//! evaluations, health) are counted as skipped. Any problem aborts the whole read with an
//! [`ExportError`] naming the file (and line), so a caller never reports a partial total.
//!
//! [`fixture`] writes export folders in the same layout, for tests and benchmarks.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::marker::PhantomData;
use std::path::{Component, Path, PathBuf};

use flate2::bufread::MultiGzDecoder;
use md5::{Digest, Md5};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::ledger::records::{
    CostRecord, RECORD_COST, RecordStatus, nanos_to_usd, parse_usd_nanos,
};
use crate::routing::pool::Tier;

/// Folder, under the copied S3 prefix, that holds the exports.
pub const EXPORTS_FOLDER: &str = "AWSDynamoDB";
/// The export's summary manifest (its presence marks a finished export).
pub const MANIFEST_SUMMARY: &str = "manifest-summary.json";
/// The export's list of data files.
pub const MANIFEST_FILES: &str = "manifest-files.json";
/// The only export format read.
pub const OUTPUT_FORMAT: &str = "DYNAMODB_JSON";
/// The only export type read (incremental exports have another item shape).
pub const EXPORT_TYPE: &str = "FULL_EXPORT";
/// Longest data line accepted (a DynamoDB item is at most 400 KB; its JSON is larger, not 16 MB).
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// What a successful [`read_export`] read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    /// The export id (the `AWSDynamoDB/<export-id>` folder's name).
    pub export_id: String,
    /// Data files listed in the manifest (all read).
    pub files: usize,
    /// Items in the data files, cost records or not.
    pub items: u64,
    /// Cost records passed to the callback.
    pub cost_records: u64,
    /// Other items (rollups, evaluations, ...).
    pub skipped: u64,
}

/// Why an export could not be read. Every message names the file (as a path under the folder
/// given) and, for problems in a line, its 1-based line number.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("no manifest-summary.json under {dir}: expected {expected}")]
    NoManifest { dir: PathBuf, expected: PathBuf },
    #[error(
        "{dir} holds {} exports ({}): give one of them, e.g. {example}",
        .ids.len(),
        .ids.join(", ")
    )]
    SeveralExports {
        dir: PathBuf,
        ids: Vec<String>,
        example: PathBuf,
    },
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: invalid manifest: {detail}")]
    ManifestSummary { path: PathBuf, detail: String },
    #[error("{path}:{line}: invalid manifest line: {detail}")]
    ManifestFiles {
        path: PathBuf,
        line: u64,
        detail: String,
    },
    #[error("{path}: unsupported export: {detail}")]
    Unsupported { path: PathBuf, detail: String },
    #[error("data file {path} is missing (listed in {manifest}:{line})")]
    MissingDataFile {
        path: PathBuf,
        manifest: PathBuf,
        line: u64,
    },
    #[error("{path}: not a valid gzip file: {source}")]
    Gzip { path: PathBuf, source: io::Error },
    #[error("{path}:{line}: line longer than 16 MiB")]
    LineTooLong { path: PathBuf, line: u64 },
    #[error("{path}:{line}: invalid JSON item: {detail}")]
    Json {
        path: PathBuf,
        line: u64,
        detail: String,
    },
    #[error("{path}:{line}: cost record has no attribute `{attr}`")]
    MissingAttribute {
        path: PathBuf,
        line: u64,
        attr: &'static str,
    },
    #[error("{path}:{line}: attribute `{attr}` is {found}, expected type {expected}")]
    WrongType {
        path: PathBuf,
        line: u64,
        attr: &'static str,
        expected: &'static str,
        found: String,
    },
    #[error("{path}:{line}: attribute `{attr}` = {value:?} is not {expected}")]
    InvalidValue {
        path: PathBuf,
        line: u64,
        attr: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("{path}: {found} items, but the manifest says {expected}")]
    CountMismatch {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
    #[error("{path}: the data files hold {found} items in total, but it says {expected}")]
    TotalMismatch {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
    #[error(
        "{path}: md5 {found} differs from the manifest's {expected}: the file is not the one \
         exported (changed, or incompletely copied)"
    )]
    Checksum {
        path: PathBuf,
        expected: String,
        found: String,
    },
}

/// Reads the export in `dir` (the folder holding `AWSDynamoDB/`, or the `<export-id>` folder
/// itself), passing each cost record to `on_record` in file order.
///
/// Streaming: memory does not grow with the export. Records are passed as they are read,
/// before their file's checksum and count are verified: on error, discard what was received.
pub fn read_export(
    dir: &Path,
    mut on_record: impl FnMut(CostRecord),
) -> Result<ExportSummary, ExportError> {
    let (export_dir, export_id) = locate(dir)?;
    let summary_path = export_dir.join(MANIFEST_SUMMARY);
    let expected_total = read_summary(&summary_path)?;
    let manifest_path = export_dir.join(MANIFEST_FILES);
    let entries = read_manifest_files(&manifest_path, &export_dir)?;
    let mut out = ExportSummary {
        export_id,
        files: entries.len(),
        items: 0,
        cost_records: 0,
        skipped: 0,
    };
    for entry in &entries {
        let counts = read_data_file(entry, &manifest_path, &mut on_record)?;
        if counts.items != entry.item_count {
            return Err(ExportError::CountMismatch {
                path: entry.path.clone(),
                expected: entry.item_count,
                found: counts.items,
            });
        }
        out.items += counts.items;
        out.cost_records += counts.cost;
        out.skipped += counts.skipped;
    }
    if out.items != expected_total {
        return Err(ExportError::TotalMismatch {
            path: summary_path,
            expected: expected_total,
            found: out.items,
        });
    }
    Ok(out)
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ExportError + '_ {
    move |source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The export folder and its id.
fn locate(dir: &Path) -> Result<(PathBuf, String), ExportError> {
    let meta = fs::metadata(dir).map_err(io_err(dir))?;
    if dir.join(MANIFEST_SUMMARY).is_file() {
        let id = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .or_else(|| {
                let abs = dir.canonicalize().ok()?;
                Some(abs.file_name()?.to_string_lossy().into_owned())
            })
            .unwrap_or_default();
        return Ok((dir.to_path_buf(), id));
    }
    let base = if dir.join(EXPORTS_FOLDER).is_dir() {
        Some(dir.join(EXPORTS_FOLDER))
    } else if meta.is_dir() && dir.file_name().is_some_and(|n| n == EXPORTS_FOLDER) {
        Some(dir.to_path_buf())
    } else {
        None
    };
    let no_manifest = |expected: PathBuf| ExportError::NoManifest {
        dir: dir.to_path_buf(),
        expected,
    };
    let Some(base) = base else {
        // An export folder without its summary (unfinished, or partly copied)?
        let looks_like_export = dir.join("_started").exists() || dir.join("data").is_dir();
        return Err(no_manifest(if looks_like_export {
            dir.join(MANIFEST_SUMMARY)
        } else {
            dir.join(EXPORTS_FOLDER)
                .join("<export-id>")
                .join(MANIFEST_SUMMARY)
        }));
    };
    let mut ids = Vec::new();
    for entry in fs::read_dir(&base).map_err(io_err(&base))? {
        let entry = entry.map_err(io_err(&base))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && entry.path().is_dir() {
            ids.push(name);
        }
    }
    ids.sort();
    match ids.as_slice() {
        [] => Err(no_manifest(base.join("<export-id>").join(MANIFEST_SUMMARY))),
        [id] => {
            let export_dir = base.join(id);
            if export_dir.join(MANIFEST_SUMMARY).is_file() {
                Ok((export_dir, id.clone()))
            } else {
                Err(no_manifest(export_dir.join(MANIFEST_SUMMARY)))
            }
        }
        [first, ..] => Err(ExportError::SeveralExports {
            dir: dir.to_path_buf(),
            example: base.join(first),
            ids,
        }),
    }
}

#[derive(Deserialize)]
struct SummaryManifest {
    #[serde(rename = "itemCount")]
    item_count: u64,
    #[serde(rename = "outputFormat", default)]
    output_format: Option<String>,
    #[serde(rename = "exportType", default)]
    export_type: Option<String>,
}

/// The summary's `itemCount`, after checking the export is one this reads.
fn read_summary(path: &Path) -> Result<u64, ExportError> {
    let text = fs::read_to_string(path).map_err(io_err(path))?;
    let summary: SummaryManifest =
        serde_json::from_str(&text).map_err(|e| ExportError::ManifestSummary {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
    let unsupported = |detail: String| ExportError::Unsupported {
        path: path.to_path_buf(),
        detail,
    };
    if let Some(format) = summary.output_format.filter(|f| f != OUTPUT_FORMAT) {
        return Err(unsupported(format!(
            "outputFormat {format:?}, only {OUTPUT_FORMAT} is read"
        )));
    }
    if let Some(kind) = summary.export_type.filter(|k| k != EXPORT_TYPE) {
        return Err(unsupported(format!(
            "exportType {kind:?}, only {EXPORT_TYPE} is read"
        )));
    }
    Ok(summary.item_count)
}

#[derive(Deserialize)]
struct FileManifestLine {
    #[serde(rename = "itemCount")]
    item_count: u64,
    #[serde(rename = "md5Checksum")]
    md5_checksum: String,
    #[serde(rename = "dataFileS3Key")]
    data_file_s3_key: String,
}

/// One data file of the manifest.
struct DataFile {
    /// Local path (under the folder given).
    path: PathBuf,
    /// Line of manifest-files.json listing it.
    line: u64,
    item_count: u64,
    /// Base64 md5 of the compressed file.
    md5: String,
}

fn read_manifest_files(path: &Path, export_dir: &Path) -> Result<Vec<DataFile>, ExportError> {
    let mut reader = BufReader::new(File::open(path).map_err(io_err(path))?);
    let mut files = Vec::new();
    let mut keys = HashSet::new();
    let mut text = String::new();
    let mut line = 0u64;
    loop {
        text.clear();
        if reader.read_line(&mut text).map_err(io_err(path))? == 0 {
            return Ok(files);
        }
        line += 1;
        if text.trim().is_empty() {
            continue;
        }
        let bad = |detail: String| ExportError::ManifestFiles {
            path: path.to_path_buf(),
            line,
            detail,
        };
        let entry: FileManifestLine =
            serde_json::from_str(&text).map_err(|e| bad(json_detail(&e)))?;
        if !is_base64_md5(&entry.md5_checksum) {
            return Err(bad(format!(
                "md5Checksum {:?} is not a base64 MD5",
                entry.md5_checksum
            )));
        }
        let rel = data_file_relative(&entry.data_file_s3_key).ok_or_else(|| {
            bad(format!(
                "dataFileS3Key {:?} is not <prefix>/{EXPORTS_FOLDER}/<export-id>/<file>",
                entry.data_file_s3_key
            ))
        })?;
        if !keys.insert(rel.clone()) {
            return Err(bad(format!(
                "dataFileS3Key {:?} is listed twice",
                entry.data_file_s3_key
            )));
        }
        files.push(DataFile {
            path: export_dir.join(rel),
            line,
            item_count: entry.item_count,
            md5: entry.md5_checksum,
        });
    }
}

/// The part of a data file's S3 key after `AWSDynamoDB/<export-id>/` (`data/<name>.json.gz`):
/// where it is under the export folder, wherever the prefix was copied. `None` if the key has
/// no such part, or a part that would leave the export folder.
fn data_file_relative(key: &str) -> Option<PathBuf> {
    let marker = format!("{EXPORTS_FOLDER}/");
    let after = &key[key.rfind(&marker)? + marker.len()..];
    let (_export_id, rel) = after.split_once('/')?;
    let rel = PathBuf::from(rel);
    let normal = rel.components().all(|c| matches!(c, Component::Normal(_)));
    (normal && rel.components().next().is_some()).then_some(rel)
}

/// What one data file held.
struct FileCounts {
    items: u64,
    cost: u64,
    skipped: u64,
}

/// A data file being read: lines over gunzip over the md5 of the raw bytes.
type DataReader = BufReader<MultiGzDecoder<BufReader<Md5Reader<File>>>>;

/// Reads a data file, passing its cost records on, and checks its md5 (the count is the
/// caller's to check).
fn read_data_file(
    file: &DataFile,
    manifest: &Path,
    on_record: &mut impl FnMut(CostRecord),
) -> Result<FileCounts, ExportError> {
    let path = file.path.as_path();
    let raw = File::open(path).map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound {
            ExportError::MissingDataFile {
                path: path.to_path_buf(),
                manifest: manifest.to_path_buf(),
                line: file.line,
            }
        } else {
            ExportError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    })?;
    let mut reader: DataReader = BufReader::with_capacity(
        256 << 10,
        MultiGzDecoder::new(BufReader::with_capacity(64 << 10, Md5Reader::new(raw))),
    );
    let mut counts = FileCounts {
        items: 0,
        cost: 0,
        skipped: 0,
    };
    let lines = read_lines(&mut reader, path, &mut counts, on_record);
    if let Err(e @ (ExportError::Io { .. } | ExportError::Gzip { .. })) = lines {
        return Err(e);
    }
    // Read what is left (nothing, unless a line was bad) so that the md5 covers the whole
    // file: a corrupt or altered file is reported as such, not by the first line it broke.
    if let Err(e) = io::copy(&mut reader, &mut io::sink()) {
        return Err(read_error(&reader, path, e));
    }
    // The decoder stops at the end of the file; drain anyway so no byte escapes the md5.
    let mut raw = reader.into_inner().into_inner();
    let trailing = io::copy(&mut raw, &mut io::sink()).map_err(io_err(path))?;
    if trailing > 0 {
        return Err(ExportError::Gzip {
            path: path.to_path_buf(),
            source: io::Error::new(io::ErrorKind::InvalidData, "data after the gzip stream"),
        });
    }
    let md5 = base64(&raw.into_inner().hash.finalize());
    if md5 != file.md5 {
        return Err(ExportError::Checksum {
            path: path.to_path_buf(),
            expected: file.md5.clone(),
            found: md5,
        });
    }
    lines.map(|()| counts)
}

/// A read error: the file's (I/O) if reading the raw bytes failed, otherwise the gzip data's.
fn read_error(reader: &DataReader, path: &Path, source: io::Error) -> ExportError {
    if reader.get_ref().get_ref().get_ref().failed {
        ExportError::Io {
            path: path.to_path_buf(),
            source,
        }
    } else {
        ExportError::Gzip {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Reads the lines of a data file to its end, counting items and passing cost records on.
fn read_lines(
    reader: &mut DataReader,
    path: &Path,
    counts: &mut FileCounts,
    on_record: &mut impl FnMut(CostRecord),
) -> Result<(), ExportError> {
    let mut buf = Vec::with_capacity(4096);
    let mut line = 0u64;
    loop {
        buf.clear();
        let n = reader
            .by_ref()
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut buf);
        let n = match n {
            Ok(n) => n,
            Err(e) => return Err(read_error(reader, path, e)),
        };
        if n == 0 {
            return Ok(());
        }
        line += 1;
        let content = buf.strip_suffix(b"\n").unwrap_or(&buf);
        if content.len() > MAX_LINE_BYTES {
            return Err(ExportError::LineTooLong {
                path: path.to_path_buf(),
                line,
            });
        }
        if content.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        counts.items += 1;
        let at = Loc { path, line };
        let item = match serde_json::from_slice::<ExportLine<'_>>(content) {
            Ok(l) => l.item,
            Err(e) => return Err(at.json(&e)),
        };
        if matches!(&item.record, Some(Attr::S(r)) if r == RECORD_COST) {
            on_record(at.cost_record(item)?);
            counts.cost += 1;
        } else {
            counts.skipped += 1;
        }
    }
}

/// Hashes (md5) the bytes read through it.
struct Md5Reader<R> {
    inner: R,
    hash: Md5,
    /// Whether a read of `inner` failed.
    failed: bool,
}

impl<R> Md5Reader<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            hash: Md5::new(),
            failed: false,
        }
    }
}

impl<R: Read> Read for Md5Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.hash.update(buf.get(..n).unwrap_or_default());
                Ok(n)
            }
            Err(e) => {
                self.failed = e.kind() != io::ErrorKind::Interrupted;
                Err(e)
            }
        }
    }
}

/// Standard base64 (with padding), as the manifest writes md5 checksums.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Whether `s` is the base64 form of a 16-byte md5 digest.
fn is_base64_md5(s: &str) -> bool {
    s.len() == 24
        && s.ends_with("==")
        && s[..22]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// A DynamoDB attribute value, as far as records use them: `S`, `N`, `BOOL`; anything else is
/// kept as a description (for the error if a contract attribute has it).
enum Attr<'a> {
    S(Cow<'a, str>),
    N(Cow<'a, str>),
    Bool(bool),
    Other(String),
}

impl Attr<'_> {
    fn describe(&self) -> String {
        match self {
            Attr::S(_) => "S".into(),
            Attr::N(_) => "N".into(),
            Attr::Bool(_) => "BOOL".into(),
            Attr::Other(what) => what.clone(),
        }
    }
}

/// A JSON scalar (strings borrowed from the line when unescaped); anything else is `Other`.
enum Scalar<'a> {
    Str(Cow<'a, str>),
    Bool(bool),
    Other,
}

struct ScalarVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for ScalarVisitor<'a> {
    type Value = Scalar<'a>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v)))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Scalar::Other)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Scalar::Other)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Scalar::Other)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor(PhantomData))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Attr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct AttrVisitor<'a>(PhantomData<&'a ()>);

        impl<'de: 'a, 'a> Visitor<'de> for AttrVisitor<'a> {
            type Value = Attr<'a>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a DynamoDB attribute value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let Some(tag) = map.next_key::<Scalar<'a>>()? else {
                    return Ok(Attr::Other("an empty object".into()));
                };
                let tag = match tag {
                    Scalar::Str(t) => t,
                    _ => return Err(de::Error::custom("object key is not a string")),
                };
                let value = map.next_value::<Scalar<'a>>()?;
                let attr = match (tag.as_ref(), value) {
                    ("S", Scalar::Str(s)) => Attr::S(s),
                    ("N", Scalar::Str(n)) => Attr::N(n),
                    ("BOOL", Scalar::Bool(b)) => Attr::Bool(b),
                    ("S" | "N" | "BOOL", _) => Attr::Other(format!("a malformed {tag} value")),
                    (other, _) => Attr::Other(other.to_owned()),
                };
                if map.next_key::<IgnoredAny>()?.is_some() {
                    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                    return Ok(Attr::Other("an object of several types".into()));
                }
                Ok(attr)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Attr::Other("an untyped string".into()))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Attr::Other("an untyped boolean".into()))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Attr::Other("an untyped number".into()))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Attr::Other("an untyped number".into()))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Attr::Other("an untyped number".into()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Attr::Other("null".into()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Attr::Other("an untyped array".into()))
            }
        }

        d.deserialize_any(AttrVisitor(PhantomData))
    }
}

/// The attributes of an item that a cost record is read from; others are ignored.
#[derive(Default)]
struct Item<'a> {
    record: Option<Attr<'a>>,
    query_id: Option<Attr<'a>>,
    ts: Option<Attr<'a>>,
    tenant: Option<Attr<'a>>,
    model: Option<Attr<'a>>,
    tier: Option<Attr<'a>>,
    predicted_tier: Option<Attr<'a>>,
    confidence: Option<Attr<'a>>,
    escalated: Option<Attr<'a>>,
    decided_by: Option<Attr<'a>>,
    input_tokens: Option<Attr<'a>>,
    output_tokens: Option<Attr<'a>>,
    tokens_estimated: Option<Attr<'a>>,
    cost_usd: Option<Attr<'a>>,
    baseline_model: Option<Attr<'a>>,
    baseline_cost_usd: Option<Attr<'a>>,
    router_ms: Option<Attr<'a>>,
    upstream_ms: Option<Attr<'a>>,
    task_kind: Option<Attr<'a>>,
    status: Option<Attr<'a>>,
    shadow: Option<Attr<'a>>,
    pricing_version: Option<Attr<'a>>,
    router_version: Option<Attr<'a>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Item<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ItemVisitor<'a>(PhantomData<&'a ()>);

        impl<'de: 'a, 'a> Visitor<'de> for ItemVisitor<'a> {
            type Value = Item<'a>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a DynamoDB item (an object of attributes)")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut item = Item::default();
                while let Some(key) = map.next_key::<Scalar<'a>>()? {
                    let Scalar::Str(key) = key else {
                        return Err(de::Error::custom("object key is not a string"));
                    };
                    let slot = match key.as_ref() {
                        "record" => &mut item.record,
                        "query_id" => &mut item.query_id,
                        "ts" => &mut item.ts,
                        "tenant" => &mut item.tenant,
                        "model" => &mut item.model,
                        "tier" => &mut item.tier,
                        "predicted_tier" => &mut item.predicted_tier,
                        "confidence" => &mut item.confidence,
                        "escalated" => &mut item.escalated,
                        "decided_by" => &mut item.decided_by,
                        "input_tokens" => &mut item.input_tokens,
                        "output_tokens" => &mut item.output_tokens,
                        "tokens_estimated" => &mut item.tokens_estimated,
                        "cost_usd" => &mut item.cost_usd,
                        "baseline_model" => &mut item.baseline_model,
                        "baseline_cost_usd" => &mut item.baseline_cost_usd,
                        "router_ms" => &mut item.router_ms,
                        "upstream_ms" => &mut item.upstream_ms,
                        "task_kind" => &mut item.task_kind,
                        "status" => &mut item.status,
                        "shadow" => &mut item.shadow,
                        "pricing_version" => &mut item.pricing_version,
                        "router_version" => &mut item.router_version,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    if slot.is_some() {
                        return Err(de::Error::custom(format!("duplicate attribute `{key}`")));
                    }
                    *slot = Some(map.next_value()?);
                }
                Ok(item)
            }
        }

        d.deserialize_map(ItemVisitor(PhantomData))
    }
}

/// One data line: `{"Item": {...}}`.
struct ExportLine<'a> {
    item: Item<'a>,
}

impl<'de: 'a, 'a> Deserialize<'de> for ExportLine<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct LineVisitor<'a>(PhantomData<&'a ()>);

        impl<'de: 'a, 'a> Visitor<'de> for LineVisitor<'a> {
            type Value = ExportLine<'a>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(r#"an object {"Item": {...}}"#)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut item = None;
                while let Some(key) = map.next_key::<Scalar<'a>>()? {
                    if matches!(&key, Scalar::Str(k) if k == "Item") {
                        if item.is_some() {
                            return Err(de::Error::custom("duplicate `Item`"));
                        }
                        item = Some(map.next_value::<Item<'a>>()?);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                item.map(|item| ExportLine { item })
                    .ok_or_else(|| de::Error::custom("no `Item` (not a full-export line)"))
            }
        }

        d.deserialize_map(LineVisitor(PhantomData))
    }
}

/// A serde_json error on one line: its position is within the line, so keep the column
/// and drop "line 1".
fn json_detail(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match msg.strip_suffix(&suffix) {
        Some(m) if e.column() > 0 => format!("{m} (column {})", e.column()),
        Some(m) => m.to_owned(),
        None => msg,
    }
}

/// A line of a data file, for errors.
struct Loc<'p> {
    path: &'p Path,
    line: u64,
}

impl Loc<'_> {
    fn json(&self, e: &serde_json::Error) -> ExportError {
        ExportError::Json {
            path: self.path.to_path_buf(),
            line: self.line,
            detail: json_detail(e),
        }
    }

    fn present<'a>(
        &self,
        attr: &'static str,
        v: Option<Attr<'a>>,
    ) -> Result<Attr<'a>, ExportError> {
        v.ok_or_else(|| ExportError::MissingAttribute {
            path: self.path.to_path_buf(),
            line: self.line,
            attr,
        })
    }

    fn wrong_type(&self, attr: &'static str, expected: &'static str, v: &Attr) -> ExportError {
        ExportError::WrongType {
            path: self.path.to_path_buf(),
            line: self.line,
            attr,
            expected,
            found: v.describe(),
        }
    }

    fn invalid(&self, attr: &'static str, value: &str, expected: &'static str) -> ExportError {
        ExportError::InvalidValue {
            path: self.path.to_path_buf(),
            line: self.line,
            attr,
            value: value.to_owned(),
            expected,
        }
    }

    fn text<'a>(
        &self,
        attr: &'static str,
        v: Option<Attr<'a>>,
    ) -> Result<Cow<'a, str>, ExportError> {
        match self.present(attr, v)? {
            Attr::S(s) => Ok(s),
            other => Err(self.wrong_type(attr, "S", &other)),
        }
    }

    fn string(&self, attr: &'static str, v: Option<Attr>) -> Result<String, ExportError> {
        self.text(attr, v).map(Cow::into_owned)
    }

    fn number<'a>(
        &self,
        attr: &'static str,
        v: Option<Attr<'a>>,
    ) -> Result<Cow<'a, str>, ExportError> {
        match self.present(attr, v)? {
            Attr::N(n) => Ok(n),
            other => Err(self.wrong_type(attr, "N", &other)),
        }
    }

    fn boolean(&self, attr: &'static str, v: Option<Attr>) -> Result<bool, ExportError> {
        match self.present(attr, v)? {
            Attr::Bool(b) => Ok(b),
            other => Err(self.wrong_type(attr, "BOOL", &other)),
        }
    }

    fn count(&self, attr: &'static str, v: Option<Attr>) -> Result<u64, ExportError> {
        let n = self.number(attr, v)?;
        n.trim()
            .parse()
            .map_err(|_| self.invalid(attr, &n, "a non-negative integer"))
    }

    fn float(&self, attr: &'static str, v: Option<Attr>) -> Result<f64, ExportError> {
        let n = self.number(attr, v)?;
        n.trim()
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .ok_or_else(|| self.invalid(attr, &n, "a finite number"))
    }

    fn usd(&self, attr: &'static str, v: Option<Attr>) -> Result<f64, ExportError> {
        let n = self.number(attr, v)?;
        parse_usd_nanos(&n)
            .map(nanos_to_usd)
            .ok_or_else(|| self.invalid(attr, &n, "a decimal amount with at most 9 decimals"))
    }

    fn tier(&self, attr: &'static str, v: Option<Attr>) -> Result<Tier, ExportError> {
        let t = self.text(attr, v)?;
        t.parse()
            .map_err(|_| self.invalid(attr, &t, "a tier (tier1, tier2, tier3)"))
    }

    fn decided_by(
        &self,
        attr: &'static str,
        v: Option<Attr>,
    ) -> Result<crate::routing::decision::DecidedBy, ExportError> {
        let t = self.text(attr, v)?;
        t.parse().map_err(|_| {
            self.invalid(
                attr,
                &t,
                "a decision source (rule:<name>, classifier, passthrough)",
            )
        })
    }

    fn status(&self, attr: &'static str, v: Option<Attr>) -> Result<RecordStatus, ExportError> {
        let t = self.text(attr, v)?;
        RecordStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == t)
            .ok_or_else(|| {
                self.invalid(attr, &t, "a status (routed, ok, upstream_error, rejected)")
            })
    }

    /// The cost record of an item whose `record` is `cost`: every contract attribute present
    /// with its type (`upstream_ms` optional).
    fn cost_record(&self, it: Item) -> Result<CostRecord, ExportError> {
        Ok(CostRecord {
            record: RECORD_COST.to_string(),
            query_id: self.string("query_id", it.query_id)?,
            ts: self.string("ts", it.ts)?,
            tenant: self.string("tenant", it.tenant)?,
            model: self.string("model", it.model)?,
            tier: self.tier("tier", it.tier)?,
            predicted_tier: self.tier("predicted_tier", it.predicted_tier)?,
            confidence: self.float("confidence", it.confidence)?,
            escalated: self.boolean("escalated", it.escalated)?,
            decided_by: self.decided_by("decided_by", it.decided_by)?,
            task_kind: match it.task_kind {
                Some(v) => Some(self.string("task_kind", Some(v))?),
                None => None,
            },
            input_tokens: self.count("input_tokens", it.input_tokens)?,
            output_tokens: self.count("output_tokens", it.output_tokens)?,
            tokens_estimated: self.boolean("tokens_estimated", it.tokens_estimated)?,
            cost_usd: self.usd("cost_usd", it.cost_usd)?,
            baseline_model: self.string("baseline_model", it.baseline_model)?,
            baseline_cost_usd: self.usd("baseline_cost_usd", it.baseline_cost_usd)?,
            router_ms: self.float("router_ms", it.router_ms)?,
            upstream_ms: match it.upstream_ms {
                Some(v) => Some(self.float("upstream_ms", Some(v))?),
                None => None,
            },
            status: self.status("status", it.status)?,
            shadow: self.boolean("shadow", it.shadow)?,
            pricing_version: self.string("pricing_version", it.pricing_version)?,
            router_version: self.string("router_version", it.router_version)?,
            // The attempts of proxied calls are not needed for reports.
            upstream: None,
        })
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

pub mod fixture {
    //! Writes export folders in the layout DynamoDB's export to S3 produces (manifests with
    //! counts and md5 checksums, gzip data files, the `_started` marker), and cost records as
    //! export items, attribute types as `aws::dynamo::cost_item` writes them. For tests and
    //! benchmarks; no command uses it.

    use std::fs::{self, File};
    use std::io::{self, BufWriter, Write};
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use flate2::Compression;
    use flate2::write::GzEncoder;
    use md5::{Digest, Md5};
    use serde_json::{Value, json};

    use super::{EXPORTS_FOLDER, MANIFEST_FILES, MANIFEST_SUMMARY, Md5Writer, base64};
    use crate::ledger::records::{
        CostRecord, RECORD_COST, Timestamp, decimal, nanos_to_decimal, usd_to_nanos,
    };

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
            let prefix = self
                .s3_prefix
                .as_deref()
                .map(|p| format!("{p}/"))
                .unwrap_or_default();
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
            let prefix = self
                .s3_prefix
                .as_deref()
                .map(|p| format!("{p}/"))
                .unwrap_or_default();
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

    /// `{"Item": item}` as one export line.
    pub fn line(item: &Value) -> String {
        json!({ "Item": item }).to_string()
    }

    /// The record as an export item (DynamoDB JSON), attributes and types exactly as
    /// `aws::dynamo::cost_item(rec, ttl)` writes them, `pk`/`sk`/`day`/`ttl` included.
    pub fn cost_item_json(rec: &CostRecord, ttl: Duration) -> Value {
        let s = |v: &str| json!({ "S": v });
        let n = |v: String| json!({ "N": v });
        let b = |v: bool| json!({ "BOOL": v });
        let expires = Timestamp::parse_unix(&rec.ts)
            .unwrap_or(0)
            .saturating_add(ttl.as_secs() as i64);
        let mut item = json!({
            "pk": s(&format!("Q#{}", rec.query_id)),
            "sk": s(RECORD_COST),
            "record": s(RECORD_COST),
            "query_id": s(&rec.query_id),
            "ts": s(&rec.ts),
            "day": s(rec.day()),
            "tenant": s(&rec.tenant),
            "model": s(&rec.model),
            "tier": s(rec.tier.as_str()),
            "predicted_tier": s(rec.predicted_tier.as_str()),
            "confidence": n(decimal(rec.confidence, 6)),
            "escalated": b(rec.escalated),
            "decided_by": s(&rec.decided_by.to_string()),
            "input_tokens": n(rec.input_tokens.to_string()),
            "output_tokens": n(rec.output_tokens.to_string()),
            "tokens_estimated": b(rec.tokens_estimated),
            "cost_usd": n(nanos_to_decimal(usd_to_nanos(rec.cost_usd))),
            "baseline_model": s(&rec.baseline_model),
            "baseline_cost_usd": n(nanos_to_decimal(usd_to_nanos(rec.baseline_cost_usd))),
            "router_ms": n(decimal(rec.router_ms, 3)),
            "status": s(rec.status.as_str()),
            "shadow": b(rec.shadow),
            "pricing_version": s(&rec.pricing_version),
            "router_version": s(&rec.router_version),
            "ttl": n(expires.to_string()),
        });
        if let (Some(kind), Some(map)) = (&rec.task_kind, item.as_object_mut()) {
            map.insert("task_kind".into(), s(kind));
        }
        if let (Some(ms), Some(map)) = (rec.upstream_ms, item.as_object_mut()) {
            map.insert("upstream_ms".into(), n(decimal(ms, 3)));
        }
        item
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::{Value, json};

    use super::fixture::{ExportWriter, cost_item_json, line};
    use super::*;
    use crate::ledger::records::usd_to_nanos;

    const TTL: Duration = Duration::from_secs(90 * 86_400);
    const ID: &str = "01764547200000-a1b2c3d4";

    fn record(i: u64) -> CostRecord {
        let tier = Tier::ALL[(i % 3) as usize];
        CostRecord {
            record: RECORD_COST.into(),
            query_id: format!("0190c3e0-0000-7000-8000-{i:012}"),
            ts: format!("2026-11-{:02}T12:00:{:02}.123Z", 1 + i % 28, i % 60),
            tenant: format!("tenant-{}", i % 4),
            model: format!("model-{}", i % 5),
            tier,
            predicted_tier: Tier::ALL[((i + 1) % 3) as usize],
            confidence: (i % 1000) as f64 / 1000.0,
            escalated: i.is_multiple_of(7),
            decided_by: if i.is_multiple_of(5) {
                crate::routing::decision::DecidedBy::rule("greeting")
            } else {
                crate::routing::decision::DecidedBy::Classifier
            },
            task_kind: None,
            input_tokens: 10 + i % 900,
            output_tokens: i % 500,
            tokens_estimated: i.is_multiple_of(2),
            cost_usd: nanos_to_usd((i * 7919 + 13) as i64),
            baseline_model: "openai/gpt-4o".into(),
            baseline_cost_usd: nanos_to_usd((i * 104_729 + 1) as i64),
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

    /// Applies `edit` to every entry of manifest-files.json.
    fn edit_manifest(export_dir: &Path, edit: impl Fn(&mut Value)) {
        let path = export_dir.join(MANIFEST_FILES);
        let text = fs::read_to_string(&path).unwrap();
        let mut out = String::new();
        for l in text.lines() {
            let mut v: Value = serde_json::from_str(l).unwrap();
            edit(&mut v);
            out.push_str(&v.to_string());
            out.push('\n');
        }
        fs::write(path, out).unwrap();
    }

    /// Replaces a data file's bytes, and its manifest md5 so that only the content is wrong.
    fn replace_data_file(export_dir: &Path, name: &str, bytes: &[u8]) {
        fs::write(export_dir.join("data").join(name), bytes).unwrap();
        let md5 = base64(&Md5::digest(bytes));
        edit_manifest(export_dir, |v| {
            if v["dataFileS3Key"].as_str().unwrap().ends_with(name) {
                v["md5Checksum"] = json!(md5);
            }
        });
    }

    fn gzip(text: &str) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(text.as_bytes()).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn base64_matches_known_values() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"M"), "TQ==");
        assert_eq!(base64(b"Ma"), "TWE=");
        assert_eq!(base64(b"Man"), "TWFu");
        assert_eq!(base64(&Md5::digest(b"")), "1B2M2Y8AsgTpgAmY7PhCfg==");
        assert!(is_base64_md5("1B2M2Y8AsgTpgAmY7PhCfg=="));
        assert!(!is_base64_md5("1B2M2Y8AsgTpgAmY7PhCfg="));
        assert!(!is_base64_md5("d41d8cd98f00b204e9800998ecf8427e"));
    }

    #[test]
    fn data_keys_resolve_under_the_export_folder() {
        let rel = |k: &str| data_file_relative(k).map(|p| p.to_string_lossy().into_owned());
        assert_eq!(
            rel("AWSDynamoDB/x/data/a.json.gz").as_deref(),
            Some("data/a.json.gz")
        );
        assert_eq!(
            rel("some/prefix/AWSDynamoDB/x/data/a.json.gz").as_deref(),
            Some("data/a.json.gz")
        );
        assert_eq!(rel("AWSDynamoDB/x/../../etc/passwd"), None);
        assert_eq!(rel("AWSDynamoDB/x/"), None);
        assert_eq!(rel("data/a.json.gz"), None);
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
        let nanos = |rs: &[CostRecord]| -> (i64, i64) {
            rs.iter().fold((0, 0), |(c, b), r| {
                (
                    c + usd_to_nanos(r.cost_usd),
                    b + usd_to_nanos(r.baseline_cost_usd),
                )
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

    #[test]
    fn a_bad_json_line_names_file_and_line() {
        let tmp = tempfile::tempdir().unwrap();
        let mut w = ExportWriter::create(tmp.path(), ID).unwrap();
        let good = line(&cost_item_json(&record(1), TTL));
        let path = w
            .data_file(
                "bad.json.gz",
                [good.as_str(), "", r#"{"Item": {"pk": {"S": "x"}"#],
            )
            .unwrap();
        w.finish().unwrap();
        let e = err(tmp.path());
        assert!(
            e.starts_with(&format!("{}:3: invalid JSON item", path.display())),
            "{e}"
        );
        assert!(e.contains("column"), "{e}");

        for (bad, want) in [("[1, 2]", "expected"), (r#"{"Keys": {}}"#, "no `Item`")] {
            let tmp = tempfile::tempdir().unwrap();
            let mut w = ExportWriter::create(tmp.path(), ID).unwrap();
            let path = w.data_file("x.json.gz", [bad]).unwrap();
            w.finish().unwrap();
            let e = err(tmp.path());
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
            let tmp = tempfile::tempdir().unwrap();
            let mut item = cost_item_json(&record(2), TTL);
            if value.is_null() {
                item.as_object_mut().unwrap().remove(attr);
            } else {
                item[attr] = value;
            }
            let mut w = ExportWriter::create(tmp.path(), ID).unwrap();
            let lines = [
                line(&cost_item_json(&record(1), TTL)),
                rollup_line(),
                line(&item),
            ];
            let path = w.data_file("f.json.gz", lines).unwrap();
            w.finish().unwrap();
            let e = err(tmp.path());
            assert!(e.starts_with(&format!("{}:3: ", path.display())), "{e}");
            assert!(e.contains(want), "{attr}: {e}");
        }
    }

    #[test]
    fn count_mismatches_are_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let (_, export_dir) = write_export(tmp.path(), ID, 30, 2);
        edit_manifest(&export_dir, |v| {
            if v["dataFileS3Key"]
                .as_str()
                .unwrap()
                .ends_with("file1.json.gz")
            {
                v["itemCount"] = json!(v["itemCount"].as_u64().unwrap() + 1);
            }
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
        edit_manifest(&export_dir, |v| {
            if v["dataFileS3Key"]
                .as_str()
                .unwrap()
                .ends_with("file0.json.gz")
            {
                v["md5Checksum"] = json!("1B2M2Y8AsgTpgAmY7PhCfg==");
            }
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
}
