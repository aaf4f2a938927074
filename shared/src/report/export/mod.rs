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
//!
//! - `error`: [`ExportError`], every message naming the file (and line).
//! - `manifest`: finding the export folder, its summary and its list of data files.
//! - `data`: reading a data file (gunzip, md5, lines).
//! - `dynamo_json`: the DynamoDB JSON of a line, parsed without copying strings.
//! - `record`: a cost record out of an item's attributes, each checked for its type.
//!
//! The tests crate's `export_fixture` writes export folders in the same layout.

mod data;
mod dynamo_json;
mod error;
mod manifest;
mod record;

use std::path::Path;

use data::read_data_file;
use manifest::{locate, read_manifest_files, read_summary};

pub use error::ExportError;
pub use manifest::base64;

use crate::ledger::records::CostRecord;

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
