//! The SQL target: `Db::sql` as an anonymous caller over a database holding a public Datanet
//! and a private one whose records carry a marker.
//!
//! Invariants (access rules hold below SQL): no panic; no output cell and no error message
//! carries the private marker; the private Datanet's name appears in an error only when the
//! query wrote it; and a query naming the private Datanet behaves exactly as the same query
//! naming a Datanet that does not exist (same success or failure, same message).

use std::sync::OnceLock;
use std::time::Duration;

use provdb::query::arrow::util::display::{ArrayFormatter, FormatOptions};
use provdb::{Address, Caller, Datanet, Db, IngestOptions, QueryLimits, Result, Visibility};

/// Longest query tried: keeps every execution fast.
const MAX_QUERY_BYTES: usize = 256;
/// In every record of the private Datanet, and nowhere else.
const MARKER: &str = "pv7qx3kmarker";
/// The private Datanet, and a name of the same length that no Datanet has.
const PRIVATE: &str = "zq_private";
const MISSING: &str = "zq_nothere";

fn db() -> &'static Db {
    static DB: OnceLock<Db> = OnceLock::new();
    DB.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("provdb-fuzz-sql-")
            .tempdir()
            .expect("temporary directory")
            .keep();
        let db = Db::init(dir.join("data")).expect("database");
        let owner = Address([0x22; 20]);
        db.create_datanet(Datanet::new("notes"))
            .expect("public datanet");
        let mut private = Datanet::new(PRIVATE);
        private.visibility = Visibility::Private;
        private.owner = Some(owner);
        db.create_datanet(private).expect("private datanet");
        let public_rows = [
            r#"{"text":"boundary layers thicken downstream","title":"flow","year":1961}"#,
            r#"{"text":"shock waves at the leading edge","title":"shocks","year":1958}"#,
            r#"{"text":"heat transfer in laminar flow","title":"heat","year":1970}"#,
        ];
        let private_rows = [
            format!(r#"{{"text":"{MARKER} design notes","title":"{MARKER}","year":2024}}"#),
            format!(r#"{{"text":"second {MARKER} entry","title":"plans {MARKER}"}}"#),
        ];
        let options = IngestOptions {
            contributor: Some(owner),
            ..IngestOptions::default()
        };
        for (name, rows) in [
            ("notes", public_rows.map(String::from).to_vec()),
            (PRIVATE, private_rows.to_vec()),
        ] {
            let path = dir.join(format!("{name}.jsonl"));
            std::fs::write(&path, rows.join("\n")).expect("write rows");
            db.ingest_file(name, &path, &options).expect("ingest rows");
        }
        db
    })
}

fn limits() -> QueryLimits {
    QueryLimits {
        timeout: Duration::from_secs(2),
        memory_bytes: 64 << 20,
        max_rows: Some(50),
        max_result_bytes: 64 << 20,
    }
}

/// What a query gave, as text: its rendered cells, or its error message.
fn run(db: &Db, query: &str) -> Result<Vec<String>, String> {
    let output = db
        .sql(query, Caller::anonymous(), limits())
        .map_err(|e| e.to_string())?;
    let options = FormatOptions::default();
    let mut cells = Vec::new();
    for batch in &output.batches {
        for column in batch.columns() {
            let Ok(formatter) = ArrayFormatter::try_new(column.as_ref(), &options) else {
                continue;
            };
            for row in 0..batch.num_rows() {
                cells.push(formatter.value(row).to_string());
            }
        }
    }
    Ok(cells)
}

/// One SQL query (lossy UTF-8, at most 256 bytes) as an anonymous caller.
pub fn sql(data: &[u8]) {
    if data.len() > MAX_QUERY_BYTES {
        return;
    }
    let query = String::from_utf8_lossy(data);
    let lower = query.to_lowercase();
    let db = db();
    let outcome = run(db, &query);
    // A query that writes the marker itself may get it back; only what it did not write counts.
    if !lower.contains(MARKER) {
        match &outcome {
            Ok(cells) => {
                for cell in cells {
                    assert!(!cell.contains(MARKER), "private data in a row: {cell}");
                    assert!(!cell.contains(PRIVATE), "private Datanet named: {cell}");
                }
            }
            Err(message) => assert!(!message.contains(MARKER), "marker in: {message}"),
        }
    }
    if !lower.contains(PRIVATE)
        && let Err(message) = &outcome
    {
        assert!(!message.contains(PRIVATE), "private name in: {message}");
    }
    if lower.contains(PRIVATE) && !lower.contains(MISSING) {
        let private = run(db, &lower);
        let missing = run(db, &lower.replace(PRIVATE, MISSING));
        let timed_out = |r: &Result<Vec<String>, String>| {
            r.as_ref()
                .is_err_and(|m| m.contains("time") || m.contains("memory"))
        };
        if timed_out(&private) || timed_out(&missing) {
            return;
        }
        match (&private, &missing) {
            (Ok(_), Ok(_)) => {}
            (Err(p), Err(m)) => assert_eq!(
                p,
                &m.replace(MISSING, PRIVATE),
                "a private Datanet is told apart from a missing one"
            ),
            _ => panic!(
                "a private Datanet is told apart from a missing one: {private:?} against {missing:?}"
            ),
        }
    }
}
