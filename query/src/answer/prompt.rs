//! The prompt of a cited answer: an instruction, the sources numbered from 1, the question,
//! in the model's chat template. A source removed for leave-one-out keeps the others'
//! numbers, so the answer's markers mean the same sources in every variant.

use provdb_inference::llama::LlamaModel;

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

/// The chat prompt for `question` over `sources` (texts in order, numbered from 1), leaving
/// out the source at index `without`, if any.
pub fn answer_prompt(
    model: &LlamaModel,
    question: &str,
    sources: &[&str],
    without: Option<usize>,
) -> String {
    let mut user = String::with_capacity(256 + sources.len() * MAX_SOURCE_BYTES);
    user.push_str(INSTRUCTION);
    user.push_str("\n\nSources:\n");
    for (index, text) in sources.iter().enumerate() {
        if Some(index) == without {
            continue;
        }
        let flat: String = clip(text, MAX_SOURCE_BYTES)
            .chars()
            .map(|c| if c.is_whitespace() { ' ' } else { c })
            .collect();
        user.push_str(&format!("[{}] {}\n", index + 1, flat.trim()));
    }
    user.push_str("\nQuestion: ");
    user.push_str(question.trim());
    model.chat_prompt(&user)
}
