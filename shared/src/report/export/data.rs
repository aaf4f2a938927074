//! Reading one data file: gunzip over the md5 of the raw bytes, JSON lines of items, each cost
//! record passed on.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use flate2::bufread::MultiGzDecoder;
use md5::{Digest, Md5};

use super::dynamo_json::ExportLine;
use super::error::io_err;
use super::manifest::{DataFile, base64};
use super::record::Loc;
use super::{ExportError, MAX_LINE_BYTES};
use crate::ledger::records::CostRecord;

/// What one data file held.
pub(super) struct FileCounts {
    pub(super) items: u64,
    pub(super) cost: u64,
    pub(super) skipped: u64,
}

/// A data file being read: lines over gunzip over the md5 of the raw bytes.
type DataReader = BufReader<MultiGzDecoder<BufReader<Md5Reader<File>>>>;

/// Reads a data file, passing its cost records on, and checks its md5 (the count is the
/// caller's to check).
pub(super) fn read_data_file(
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
        if item.is_cost_record() {
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
