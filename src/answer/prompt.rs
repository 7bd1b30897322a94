//! The prompt of a cited answer: an instruction, the sources numbered from 1, the question,
//! in the model's chat template.
//!
//! The prompt is tokenized in parts (head, one line per source, tail) and the parts are
//! concatenated, so that the prompt without source `i` shares its first `prefix_len(i)` tokens
//! with the full prompt: leave-one-out reuses the generation's cache for that prefix instead of
//! recomputing it. A removed source keeps the others' numbers, so the answer's markers mean the
//! same sources in every variant.

use provdb_inference::InferenceError;
use provdb_inference::llama::{LlamaModel, neutralize};

/// Longest source text put into a prompt, in bytes (cut at a character boundary).
pub const MAX_SOURCE_BYTES: usize = 700;

/// The instruction every answer prompt starts with.
const INSTRUCTION: &str = "Answer the question using only the numbered sources below. \
After each sentence that uses a source, cite it by its number in square brackets, like [1]. \
If the sources do not contain the answer, say that you do not know.";

/// `text` cut to at most `max` bytes at a character boundary.
pub fn clip(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// An answer prompt as token parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PromptTokens {
    /// The chat template's start, the instruction and the sources' heading.
    pub head: Vec<u32>,
    /// One line per source, `[n] text`.
    pub lines: Vec<Vec<u32>>,
    /// The question and the template's end (the assistant turn starts after it).
    pub tail: Vec<u32>,
}

impl PromptTokens {
    /// The prompt with every source, or without source `without`.
    pub fn tokens(&self, without: Option<usize>) -> Vec<u32> {
        let mut out = self.head.clone();
        for (index, line) in self.lines.iter().enumerate() {
            if Some(index) != without {
                out.extend_from_slice(line);
            }
        }
        out.extend_from_slice(&self.tail);
        out
    }

    /// Tokens before source `index`'s line (shared by the full prompt and the one without it).
    pub fn prefix_len(&self, index: usize) -> usize {
        self.head.len() + self.lines[..index].iter().map(Vec::len).sum::<usize>()
    }

    /// What follows that prefix in the prompt without source `index`.
    pub fn rest_without(&self, index: usize) -> Vec<u32> {
        let mut out: Vec<u32> = self.lines[index + 1..].concat();
        out.extend_from_slice(&self.tail);
        out
    }
}

/// The prompt for `question` over `sources` (texts in order, numbered from 1).
pub fn answer_prompt(
    model: &LlamaModel,
    question: &str,
    sources: &[&str],
) -> Result<PromptTokens, InferenceError> {
    const SLOT: &str = "\u{1}";
    let template = model.chat_prompt(SLOT);
    let (before, after) = template.split_once(SLOT).unwrap_or((template.as_str(), ""));
    let head = format!("{before}{INSTRUCTION}\n\nSources:\n");
    let lines = sources
        .iter()
        .enumerate()
        .map(|(index, text)| {
            // A record's text is outside input: it must not speak as the template.
            let flat: String = neutralize(clip(text, MAX_SOURCE_BYTES))
                .chars()
                .map(|c| if c.is_whitespace() { ' ' } else { c })
                .collect();
            model.encode(&format!("[{}] {}\n", index + 1, flat.trim()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let tail = format!("\nQuestion: {}{after}", neutralize(question.trim()));
    Ok(PromptTokens {
        head: model.encode(&head)?,
        lines,
        tail: model.encode(&tail)?,
    })
}
