//! Reading a streamed answer as it passes through the proxy ([`SseTap`]): usage, `[DONE]`,
//! error events and the answer text, from raw chunks split anywhere.

use serde_json::Value;

use super::Usage;
use super::answer::{truncate, usage_of};

/// At most this much of the streamed answer is kept by [`SseTap::content`].
pub const SSE_CONTENT_CAP: usize = 64 * 1024;
/// A line longer than this is skipped (counted as an event, not read).
pub const SSE_LINE_CAP: usize = 1024 * 1024;

/// An incremental reader of an OpenAI-style server-sent-event stream, fed the raw chunks as
/// they pass through the proxy (split anywhere: inside a line, a `\r\n` or a UTF-8
/// sequence). It keeps only the current partial line (at most [`SSE_LINE_CAP`]) and the
/// first [`SSE_CONTENT_CAP`] bytes of the answer.
///
/// Each `data:` line is one event (OpenAI-style streams never split an event's JSON over
/// several `data:` lines); comments (`: ...`) and other fields are ignored.
#[derive(Debug, Default, Clone)]
pub struct SseTap {
    line: Vec<u8>,
    /// The current line overflowed [`SSE_LINE_CAP`]: skip to its end.
    skipping: bool,
    /// The previous byte was a `\r` (a following `\n` belongs to the same line break).
    after_cr: bool,
    /// At the first line (a leading BOM is dropped).
    started: bool,
    usage: Option<Usage>,
    done: bool,
    error: Option<String>,
    events: u64,
    content: String,
    malformed: bool,
}

impl SseTap {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next raw bytes of the stream.
    pub fn feed(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        while !rest.is_empty() {
            if self.after_cr {
                self.after_cr = false;
                if rest[0] == b'\n' {
                    rest = &rest[1..];
                    continue;
                }
            }
            match rest.iter().position(|&b| b == b'\n' || b == b'\r') {
                Some(i) => {
                    self.push(&rest[..i]);
                    self.after_cr = rest[i] == b'\r';
                    rest = &rest[i + 1..];
                    self.end_line();
                }
                None => {
                    self.push(rest);
                    rest = &[];
                }
            }
        }
    }

    /// Reads a last line that had no line break (call once the stream ended; optional).
    pub fn finish(&mut self) {
        if !self.line.is_empty() || self.skipping {
            self.end_line();
        }
    }

    /// The last `usage` seen in an event.
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// Whether `data: [DONE]` was seen.
    pub fn done(&self) -> bool {
        self.done
    }

    /// The message of the first event that carried an `error` object.
    pub fn error(&self) -> Option<String> {
        self.error.clone()
    }

    /// The number of `data:` lines seen (including `[DONE]`).
    pub fn events(&self) -> u64 {
        self.events
    }

    /// The streamed answer: `choices[0].delta.content` concatenated, cut at
    /// [`SSE_CONTENT_CAP`] bytes.
    pub fn content(&self) -> String {
        self.content.clone()
    }

    /// Whether a `data:` line was neither JSON nor `[DONE]`.
    pub fn malformed(&self) -> bool {
        self.malformed
    }

    fn push(&mut self, bytes: &[u8]) {
        if self.skipping {
            return;
        }
        if self.line.len() + bytes.len() > SSE_LINE_CAP {
            self.skipping = true;
            self.line = Vec::new();
            return;
        }
        self.line.extend_from_slice(bytes);
    }

    fn end_line(&mut self) {
        let line = std::mem::take(&mut self.line);
        let first = !self.started;
        self.started = true;
        if std::mem::take(&mut self.skipping) {
            tracing::debug!("stream line over {SSE_LINE_CAP} bytes skipped");
            self.events += 1;
            return;
        }
        let mut line = line.as_slice();
        if first {
            line = line.strip_prefix("\u{feff}".as_bytes()).unwrap_or(line);
        }
        let Some(data) = line.strip_prefix(b"data:") else {
            // Blank lines, comments (`: OPENROUTER PROCESSING`), `event:`, `id:`, `retry:`.
            return;
        };
        let data = data.strip_prefix(b" ").unwrap_or(data);
        self.events += 1;
        if data.trim_ascii() == b"[DONE]" {
            self.done = true;
            return;
        }
        let Ok(event) = serde_json::from_slice::<Value>(data) else {
            self.malformed = true;
            return;
        };
        if let Some(usage) = usage_of(&event) {
            self.usage = Some(usage);
        }
        if let Some(error) = event.get("error").filter(|e| e.is_object())
            && self.error.is_none()
        {
            let message = match error.get("message").and_then(Value::as_str) {
                Some(m) => m.to_string(),
                None => error.to_string(),
            };
            self.error = Some(truncate(&message, 2048).to_string());
        }
        let delta = event
            .get("choices")
            .and_then(|c| c.get(0))
            .and_then(|c| c.get("delta"))
            .and_then(|d| d.get("content"))
            .and_then(Value::as_str);
        if let Some(text) = delta {
            let room = SSE_CONTENT_CAP - self.content.len();
            self.content.push_str(truncate(text, room));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream as OpenRouter sends it: a comment, CRLF and LF line ends, multi-byte UTF-8,
    /// usage in the last chunk, `[DONE]`.
    const STREAM: &str = ": OPENROUTER PROCESSING\r\n\r\n\
        data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"Grüß \"}}]}\r\n\r\n\
        event: message\n\
        data: {\"choices\":[{\"delta\":{\"content\":\"dich 🌍!\"}}],\"usage\":null}\n\n\
        data:{\"choices\":[{\"delta\":{}}],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":4,\
        \"prompt_tokens_details\":{\"cached_tokens\":8}}}\n\n\
        data: [DONE]\n\n";

    fn check_tap(tap: &SseTap, at: usize) {
        assert!(tap.done(), "split at {at}");
        assert_eq!(tap.events(), 4, "split at {at}");
        assert_eq!(tap.content(), "Grüß dich 🌍!", "split at {at}");
        assert!(!tap.malformed(), "split at {at}");
        assert_eq!(tap.error(), None);
        assert_eq!(
            tap.usage(),
            Some(Usage {
                prompt_tokens: 12,
                completion_tokens: 4,
                reasoning_tokens: None,
                cached_tokens: Some(8),
            }),
            "split at {at}"
        );
    }

    #[test]
    fn sse_tap_reads_a_stream_split_anywhere() {
        let bytes = STREAM.as_bytes();
        for at in 0..=bytes.len() {
            let mut tap = SseTap::new();
            tap.feed(&bytes[..at]);
            tap.feed(&bytes[at..]);
            check_tap(&tap, at);
        }
        // Every byte on its own.
        let mut tap = SseTap::new();
        for b in bytes {
            tap.feed(std::slice::from_ref(b));
        }
        check_tap(&tap, usize::MAX);
        // Two splits.
        for a in (0..bytes.len()).step_by(7) {
            for b in a..bytes.len() {
                let mut tap = SseTap::new();
                tap.feed(&bytes[..a]);
                tap.feed(&bytes[a..b]);
                tap.feed(&bytes[b..]);
                check_tap(&tap, a * 10_000 + b);
            }
        }
    }

    #[test]
    fn sse_tap_lone_cr_and_unterminated_last_line() {
        let mut tap = SseTap::new();
        tap.feed(b"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\r\rdata: [DONE]");
        assert_eq!(tap.content(), "a");
        assert!(!tap.done());
        tap.finish();
        assert!(tap.done());
        assert_eq!(tap.events(), 2);
    }

    #[test]
    fn sse_tap_errors_and_malformed_lines() {
        let mut tap = SseTap::new();
        tap.feed(b"data: {\"choices\":[{\"delta\":{\"content\":\"par\"}}]}\n\n");
        tap.feed(
            b"data: {\"error\":{\"code\":502,\"message\":\"provider went away\"},\
            \"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\n\n",
        );
        assert_eq!(tap.error().as_deref(), Some("provider went away"));
        assert_eq!(tap.usage().map(|u| u.completion_tokens), Some(1));
        assert!(!tap.malformed());
        assert!(!tap.done());
        tap.feed(b"data: {\"choices\": [trunc\n\n");
        assert!(tap.malformed());
        assert_eq!(tap.events(), 3);
        assert_eq!(tap.content(), "par");
    }

    #[test]
    fn sse_tap_is_bounded() {
        let mut tap = SseTap::new();
        let chunk = "data: {\"choices\":[{\"delta\":{\"content\":\"ééééééééé\"}}]}\n\n";
        for _ in 0..8000 {
            tap.feed(chunk.as_bytes());
        }
        assert!(tap.content().len() <= SSE_CONTENT_CAP);
        assert!(tap.content().len() > SSE_CONTENT_CAP - 4);
        assert!(tap.content().chars().all(|c| c == 'é'));
        // A line over the cap is skipped without being kept, the next one is read.
        let mut tap = SseTap::new();
        let big = vec![b'x'; 64 * 1024];
        tap.feed(b"data: {\"pad\":\"");
        for _ in 0..20 {
            tap.feed(&big);
        }
        assert!(tap.line.len() <= SSE_LINE_CAP);
        tap.feed(b"\"}\ndata: [DONE]\n");
        assert!(tap.done());
        assert!(!tap.malformed());
        assert_eq!(tap.events(), 2);
    }
}
