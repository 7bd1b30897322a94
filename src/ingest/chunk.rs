//! Cuts a record's text into overlapping chunks with exact byte offsets.
//!
//! Invariants: every chunk is a slice `text[start..end]` on char boundaries; chunks are in
//! order, cover the whole text, and each starts after the previous one starts (progress is
//! guaranteed); a chunk ends at whitespace when there is whitespace in its second half.

use provdb_storage::{ChunkingConfig, NewChunk};

/// Chunks of `text` under `config`. Empty text gives no chunk.
pub fn chunk_text(text: &str, config: ChunkingConfig) -> Vec<NewChunk> {
    let size = config.size_bytes.max(16) as usize;
    let overlap = (config.overlap_bytes as usize).min(size / 2);
    let mut chunks = Vec::with_capacity(text.len() / (size - overlap) + 1);
    let mut start = 0;
    while start < text.len() {
        let mut end = floor_boundary(text, (start + size).min(text.len()));
        if end < text.len() {
            let half = floor_boundary(text, start + size / 2);
            if let Some((at, space)) = text[half..end]
                .char_indices()
                .rev()
                .find(|(_, c)| c.is_whitespace())
            {
                end = half + at + space.len_utf8();
            }
        }
        if end <= start {
            end = ceil_boundary(text, start + 1);
        }
        chunks.push(NewChunk {
            start_byte: start as u32,
            end_byte: end as u32,
        });
        if end >= text.len() {
            break;
        }
        let mut next = floor_boundary(text, end.saturating_sub(overlap));
        // Begin the overlap at a word start when one is inside it.
        if let Some((at, space)) = text[next..end]
            .char_indices()
            .find(|(_, c)| c.is_whitespace())
        {
            next += at + space.len_utf8();
        }
        start = if next > start && next <= end {
            next
        } else {
            end
        };
    }
    chunks
}

fn floor_boundary(text: &str, mut index: usize) -> usize {
    index = index.min(text.len());
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

fn ceil_boundary(text: &str, mut index: usize) -> usize {
    index = index.min(text.len());
    while !text.is_char_boundary(index) {
        index += 1;
    }
    index
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn config(size: u32, overlap: u32) -> ChunkingConfig {
        ChunkingConfig {
            size_bytes: size,
            overlap_bytes: overlap,
        }
    }

    #[test]
    fn short_text_is_one_chunk_and_empty_is_none() {
        assert_eq!(chunk_text("hello world", config(100, 10)).len(), 1);
        assert!(chunk_text("", config(100, 10)).is_empty());
    }

    #[test]
    fn long_text_splits_at_whitespace_with_overlap() {
        let text = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu";
        let chunks = chunk_text(text, config(24, 8));
        assert!(chunks.len() > 2);
        for pair in chunks.windows(2) {
            assert!(
                pair[1].start_byte < pair[0].end_byte,
                "consecutive chunks overlap"
            );
        }
        let first = &text[..chunks[0].end_byte as usize];
        assert!(first.ends_with(' '), "{first:?}");
    }

    proptest! {
        #[test]
        fn chunks_are_exact_slices_that_cover_the_text(text in "\\PC{0,400}", size in 16u32..120, overlap in 0u32..60) {
            let chunks = chunk_text(&text, config(size, overlap));
            let mut covered = 0usize;
            let mut last_start = None;
            for chunk in &chunks {
                let (s, e) = (chunk.start_byte as usize, chunk.end_byte as usize);
                prop_assert!(text.get(s..e).is_some_and(|slice| !slice.is_empty()));
                prop_assert!(s <= covered, "gap before {s}");
                prop_assert!(last_start.is_none_or(|l| s > l));
                covered = covered.max(e);
                last_start = Some(s);
            }
            prop_assert_eq!(covered, text.len());
        }
    }
}
