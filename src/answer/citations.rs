//! Citation markers in generated text: `[2]`, `[1, 3]`, `[1][2]`.
//!
//! A marker counts only when it points at a source that was given (1..=`sources`); markers
//! out of range (hallucinated), malformed (`[x]`, `[]`, `[1-]`), or inside code (`` `[1]` ``
//! or a fenced block) are dropped. A source cited several times is reported once, at its
//! first citation; the order of the result is the order of first citation.

/// What a parse found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParsedCitations {
    /// Valid source numbers (1-based), in order of first citation, without repeats.
    pub markers: Vec<u32>,
    /// Markers that pointed at no given source.
    pub dropped: Vec<u32>,
}

/// The citation markers of `text` that point at one of `sources` numbered sources.
pub fn parse_citations(text: &str, sources: usize) -> ParsedCitations {
    let mut found = ParsedCitations::default();
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut in_fence = false;
    let mut in_span = false;
    while i < bytes.len() {
        if bytes[i..].starts_with(b"```") {
            in_fence = !in_fence;
            i += 3;
            continue;
        }
        match bytes[i] {
            b'`' if !in_fence => {
                in_span = !in_span;
                i += 1;
            }
            b'[' if !in_fence && !in_span => match bracket(&bytes[i + 1..]) {
                Some((numbers, used)) => {
                    for n in numbers {
                        let valid = n >= 1 && (n as usize) <= sources;
                        if valid && !found.markers.contains(&n) {
                            found.markers.push(n);
                        } else if !valid {
                            found.dropped.push(n);
                        }
                    }
                    i += 1 + used;
                }
                None => i += 1,
            },
            _ => i += 1,
        }
    }
    found
}

/// Parses `1]`, `1, 2]` or `1,2]` after an opening bracket: the numbers and bytes consumed.
fn bracket(rest: &[u8]) -> Option<(Vec<u32>, usize)> {
    let close = rest.iter().take(32).position(|&b| b == b']')?;
    let inner = std::str::from_utf8(&rest[..close]).ok()?;
    let numbers = inner
        .split(',')
        .map(|part| {
            let part = part.trim();
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            part.parse::<u32>().ok()
        })
        .collect::<Option<Vec<u32>>>()?;
    Some((numbers, close + 1))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn markers_are_checked_against_the_sources() {
        let parsed = parse_citations(
            "Transition happens early [2]. Shocks [1, 3][2] and [7] and [0]. See [x], [], [1-].",
            3,
        );
        assert_eq!(parsed.markers, [2, 1, 3]);
        assert_eq!(parsed.dropped, [7, 0]);
    }

    #[test]
    fn code_is_not_cited() {
        let text = "Use `a[1]` or\n```\nx = b[2]\n```\nbut this is [3].";
        assert_eq!(parse_citations(text, 3).markers, [3]);
        assert!(parse_citations("no markers at all", 3).markers.is_empty());
        assert!(parse_citations("[1]", 0).markers.is_empty());
        assert_eq!(
            parse_citations("unterminated [1", 3).markers,
            Vec::<u32>::new()
        );
        assert_eq!(
            parse_citations("[99999999999999999999] [2]", 3).markers,
            [2]
        );
    }

    proptest! {
        #[test]
        fn every_kept_marker_is_a_given_source_and_appears_once(
            text in "[a-z \\[\\]0-9,`]{0,200}", sources in 0usize..6,
        ) {
            let parsed = parse_citations(&text, sources);
            let mut seen = std::collections::HashSet::new();
            for m in parsed.markers {
                prop_assert!(m >= 1 && m as usize <= sources);
                prop_assert!(seen.insert(m));
            }
        }
    }
}
