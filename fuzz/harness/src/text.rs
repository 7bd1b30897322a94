//! Targets over plain text: the SMART collection reader and the citation-marker parser.

use provdb::answer::citations::{ParsedCitations, parse_citations};

/// `provdb::smart::parse_documents` on the input as (lossy) UTF-8.
///
/// Invariants: a parse that succeeds has one document per `.I` line, in order, with the ids
/// those lines give; every field is one trimmed line; an error names the source.
pub fn smart(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match provdb::smart::parse_documents(&text, "fuzz.all") {
        Ok(docs) => {
            let ids: Vec<&str> = text
                .lines()
                .filter_map(|line| line.strip_prefix(".I"))
                .map(str::trim)
                .collect();
            assert!(!docs.is_empty(), "Ok without documents");
            assert_eq!(docs.len(), ids.len(), "one document per .I line");
            for (doc, id) in docs.iter().zip(&ids) {
                assert_eq!(id.parse::<u32>().ok(), Some(doc.id), "id of {doc:?}");
                for field in [&doc.title, &doc.authors, &doc.bibliography, &doc.text] {
                    assert!(!field.contains('\n'), "a field spans lines: {field:?}");
                    assert_eq!(field.trim(), field.as_str(), "untrimmed field {field:?}");
                }
            }
        }
        Err(e) => {
            let message = e.to_string();
            assert!(
                message.contains("fuzz.all"),
                "error without the source: {message}"
            );
            assert!(e.is_user_error(), "bad text is a user error: {message}");
        }
    }
}

/// `parse_citations(text, sources)`: the first byte gives the number of sources (0..=15), the
/// second where to cut the text, the rest is the text (lossy UTF-8).
///
/// Invariants: every marker is a given source (1..=sources), reported once, and its number is
/// written in the text; every dropped marker is out of range; there are no more markers than
/// `[` in the text; and the parse is incremental: the markers of a prefix are a prefix of the
/// markers of the whole (a later byte cannot un-cite an earlier marker).
pub fn citations(data: &[u8]) {
    let [sources, cut, rest @ ..] = data else {
        return;
    };
    let sources = usize::from(sources % 16);
    let text = String::from_utf8_lossy(rest);
    let whole = parse_citations(&text, sources);
    check_citations(&text, sources, &whole);
    let mut cut = usize::from(*cut) * text.len() / 255;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let head = parse_citations(&text[..cut], sources);
    assert!(
        whole.markers.starts_with(&head.markers),
        "markers of a prefix {:?} are not a prefix of {:?}",
        head.markers,
        whole.markers
    );
    assert!(
        whole.dropped.starts_with(&head.dropped),
        "dropped markers of a prefix {:?} are not a prefix of {:?}",
        head.dropped,
        whole.dropped
    );
}

fn check_citations(text: &str, sources: usize, parsed: &ParsedCitations) {
    let brackets = text.bytes().filter(|&b| b == b'[').count();
    assert!(parsed.markers.len() + parsed.dropped.len() <= 16 * brackets.max(1));
    for (i, &n) in parsed.markers.iter().enumerate() {
        assert!(n >= 1 && n as usize <= sources, "marker {n} of {sources}");
        assert!(!parsed.markers[..i].contains(&n), "marker {n} twice");
        assert!(text.contains(&n.to_string()), "marker {n} not in the text");
    }
    for &n in &parsed.dropped {
        assert!(n == 0 || n as usize > sources, "dropped {n} of {sources}");
    }
    if brackets == 0 {
        assert!(parsed.markers.is_empty() && parsed.dropped.is_empty());
    }
}
