//! WordPiece tokenisation as sentence-transformers does it for MiniLM: `[CLS] ... [SEP]`,
//! truncated to [`MAX_TOKENS`](super::MAX_TOKENS), no padding.

use tokenizers::Tokenizer;

use super::{EmbedError, MAX_TOKENS, assets};

/// Input bytes tokenised in full to count tokens; past this the count is extrapolated
/// (keeps a megabyte-long query from costing megabytes of tokenizer work).
const COUNT_BYTES_CAP: usize = 64 * 1024;

/// Which part of an over-long text the model sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// The first 254 word pieces: sentence-transformers' truncation (`tierwise embed`, parity).
    Head,
    /// The first `head` word pieces and the end of the text. The router uses this: in long
    /// prompts (few-shot examples, a document, then the question) the ask is at the end, and
    /// the opening line names the task.
    HeadTail { head: usize },
}

/// The tokenizer. Thread-safe (`Tokenizer` is `Sync`).
pub struct WordPiece {
    inner: Tokenizer,
    sep_id: u32,
}

/// Token ids ready for the model, and the full text's token count.
#[derive(Debug, Clone)]
pub struct Tokenized {
    /// `[CLS] tokens... [SEP]`, at most [`MAX_TOKENS`] long.
    pub ids: Vec<u32>,
    /// Tokens of the whole text with specials (>= `ids.len()`); estimated past 64 KiB of text.
    pub total_tokens: usize,
}

impl WordPiece {
    /// The bundled tokenizer.
    pub fn bundled() -> Result<Self, EmbedError> {
        Self::from_json(assets::TOKENIZER_JSON)
    }

    /// A tokenizer from `tokenizer.json` bytes. Truncation and padding are switched off:
    /// [`encode`](Self::encode) truncates itself so that it can also count the full length.
    pub fn from_json(bytes: &[u8]) -> Result<Self, EmbedError> {
        let mut inner =
            Tokenizer::from_bytes(bytes).map_err(|e| EmbedError::TokenizerLoad(e.to_string()))?;
        inner.with_padding(None);
        inner
            .with_truncation(None)
            .map_err(|e| EmbedError::TokenizerLoad(e.to_string()))?;
        let sep_id = inner
            .token_to_id("[SEP]")
            .ok_or_else(|| EmbedError::TokenizerLoad("vocabulary has no [SEP]".into()))?;
        Ok(Self { inner, sep_id })
    }

    /// Tokenises `text`: model ids truncated as sentence-transformers truncates (keep the first
    /// 254 word pieces, then `[SEP]`), and the untruncated count.
    pub fn encode(&self, text: &str) -> Result<Tokenized, EmbedError> {
        self.encode_window(text, Window::Head)
    }

    /// Tokenises `text`, truncating an over-long text to the model's window as `window` says.
    pub fn encode_window(&self, text: &str, window: Window) -> Result<Tokenized, EmbedError> {
        let (head, scale) = if text.len() > COUNT_BYTES_CAP {
            let mut cut = COUNT_BYTES_CAP;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            (&text[..cut], text.len() as f64 / cut as f64)
        } else {
            (text, 1.0)
        };
        let enc = self
            .inner
            .encode(head, true)
            .map_err(|e| EmbedError::Tokenize(e.to_string()))?;
        let mut ids = enc.get_ids().to_vec();
        let total_tokens = (ids.len() as f64 * scale).round() as usize;
        if ids.len() > MAX_TOKENS {
            match window {
                Window::Head => {
                    ids.truncate(MAX_TOKENS - 1);
                    ids.push(self.sep_id);
                }
                Window::HeadTail { head } => {
                    // [CLS] + `head` pieces + the last pieces (including [SEP]) to fill the window.
                    let head = head.min(MAX_TOKENS - 2);
                    let tail = MAX_TOKENS - 1 - head;
                    let tail_start = ids.len() - tail;
                    ids.copy_within(tail_start.., 1 + head);
                    ids.truncate(MAX_TOKENS);
                }
            }
        }
        Ok(Tokenized { ids, total_tokens })
    }

    /// Token count of `text` with specials, untruncated (estimated past 64 KiB).
    pub fn count(&self, text: &str) -> Result<usize, EmbedError> {
        self.encode(text).map(|t| t.total_tokens)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_in_cls_sep_and_truncates_to_cap() {
        let tok = WordPiece::bundled().unwrap();
        let short = tok.encode("hello world").unwrap();
        assert_eq!(short.ids.first(), Some(&101));
        assert_eq!(short.ids.last(), Some(&102));
        assert_eq!(short.ids.len(), 4);
        assert_eq!(short.total_tokens, 4);

        let long = "word ".repeat(600);
        let t = tok.encode(&long).unwrap();
        assert_eq!(t.ids.len(), MAX_TOKENS);
        assert_eq!(t.ids.last(), Some(&102));
        assert_eq!(t.total_tokens, 602);
    }

    #[test]
    fn head_tail_window_keeps_both_ends() {
        let tok = WordPiece::bundled().unwrap();
        let text = format!("alpha {} omega", "word ".repeat(600));
        let full = tok.encode_window(&text, Window::Head).unwrap();
        let ht = tok
            .encode_window(&text, Window::HeadTail { head: 8 })
            .unwrap();
        assert_eq!(ht.ids.len(), MAX_TOKENS);
        assert_eq!(ht.total_tokens, full.total_tokens);
        assert_eq!(ht.ids[..9], full.ids[..9]); // [CLS] + 8 head pieces
        let omega = tok.encode("omega").unwrap().ids[1];
        assert_eq!(ht.ids[MAX_TOKENS - 2], omega);
        assert_eq!(ht.ids[MAX_TOKENS - 1], 102);
        // A short text is the same whatever the window.
        let short = tok
            .encode_window("alpha omega", Window::HeadTail { head: 8 })
            .unwrap();
        assert_eq!(short.ids, tok.encode("alpha omega").unwrap().ids);
    }

    #[test]
    fn empty_text_is_just_specials() {
        let tok = WordPiece::bundled().unwrap();
        assert_eq!(tok.encode("").unwrap().ids, vec![101, 102]);
    }

    #[test]
    fn huge_text_count_is_extrapolated_not_exact() {
        let tok = WordPiece::bundled().unwrap();
        let text = "word ".repeat(40_000); // 200 KB, 40k words
        let n = tok.count(&text).unwrap();
        assert!((39_000..=41_000).contains(&n), "{n}");
    }
}
