//! Reader of SMART-format test collections (Cranfield, ADI, CISI, ...): documents with fields
//! `.I id`, `.T` title, `.A` authors, `.B` bibliography, `.W` text; queries with `.I` and `.W`;
//! and whitespace-separated judgment files (`query doc [x] relevance`).

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};

/// One document of a collection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SmartDoc {
    /// The `.I` id.
    pub id: u32,
    /// `.T`.
    pub title: String,
    /// `.A` (may be empty).
    pub authors: String,
    /// `.B` (may be empty).
    pub bibliography: String,
    /// `.W`.
    pub text: String,
}

/// Parses SMART text into documents. Fields other than T, A, B and W are ignored; text of a
/// field is joined into one line per paragraph with single spaces.
pub fn parse_documents(text: &str, source_name: &str) -> Result<Vec<SmartDoc>> {
    let mut docs: Vec<SmartDoc> = Vec::new();
    let mut field: Option<char> = None;
    for (index, line) in text.lines().enumerate() {
        if let Some(rest) = line.strip_prefix(".I") {
            let id = rest.trim().parse::<u32>().map_err(|_| {
                Error::Invalid(format!(
                    "{source_name}: line {}: bad document id '{}'",
                    index + 1,
                    rest.trim()
                ))
            })?;
            docs.push(SmartDoc {
                id,
                ..SmartDoc::default()
            });
            field = None;
            continue;
        }
        if line.len() == 2 && line.starts_with('.') {
            field = line.chars().nth(1);
            continue;
        }
        let Some(doc) = docs.last_mut() else {
            if line.trim().is_empty() {
                continue;
            }
            return Err(Error::Invalid(format!(
                "{source_name}: line {}: text before the first .I",
                index + 1
            )));
        };
        let target = match field {
            Some('T') => &mut doc.title,
            Some('A') => &mut doc.authors,
            Some('B') => &mut doc.bibliography,
            Some('W') => &mut doc.text,
            _ => continue,
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if !target.is_empty() {
            target.push(' ');
        }
        target.push_str(line);
    }
    if docs.is_empty() {
        return Err(Error::Invalid(format!(
            "{source_name}: no documents (.I lines) found"
        )));
    }
    Ok(docs)
}

/// Reads the documents file of a collection directory: `cran.all.1400` or `*.ALL`.
pub fn read_collection_documents(dir: &Path) -> Result<Vec<SmartDoc>> {
    let path = find_file(dir, &["cran.all.1400"], ".ALL")?;
    let text = fs_err::read_to_string(&path).map_err(Error::io(&path))?;
    parse_documents(&text, &path.display().to_string())
}

/// Finds a collection file by one of `names`, or else the single file ending in `suffix`.
pub fn find_file(dir: &Path, names: &[&str], suffix: &str) -> Result<std::path::PathBuf> {
    for name in names {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    let entries = fs_err::read_dir(dir).map_err(Error::io(dir))?;
    let mut found: Vec<_> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.to_string_lossy()
                .to_ascii_uppercase()
                .ends_with(suffix)
        })
        .collect();
    found.sort();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(Error::Invalid(format!(
            "{}: no {} or *{suffix} file",
            dir.display(),
            names.join(" or ")
        ))),
        _ => Err(Error::Invalid(format!(
            "{}: several *{suffix} files",
            dir.display()
        ))),
    }
}

/// Groups documents by normalised author string (lower case, single spaces); documents with
/// no `.A` field go under "anonymous".
pub fn authors_of(docs: &[SmartDoc]) -> BTreeMap<String, Vec<u32>> {
    let mut authors: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for doc in docs {
        authors
            .entry(normalise_author(&doc.authors))
            .or_default()
            .push(doc.id);
    }
    authors
}

/// The contributor name of a document's `.A` field.
pub fn normalise_author(authors: &str) -> String {
    let name = authors
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    if name.is_empty() {
        "anonymous".into()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fields_and_joins_lines() {
        let text = ".I 1\n.T\nfirst title\nline two .\n.A\nsmith,j.\n.B\nj. ae. 1958\n.W\nsome\ntext .\n.I 2\n.T\nsecond\n.W\nbody\n";
        let docs = parse_documents(text, "t").unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].title, "first title line two .");
        assert_eq!(docs[0].authors, "smith,j.");
        assert_eq!(docs[0].text, "some text .");
        assert_eq!(docs[1].authors, "");
        assert_eq!(normalise_author(&docs[1].authors), "anonymous");
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(parse_documents("", "t").is_err());
        assert!(parse_documents(".I x\n", "t").is_err());
        assert!(parse_documents("stray\n.I 1\n", "t").is_err());
    }
}
