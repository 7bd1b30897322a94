//! Corrupt and hostile input: clear errors, nothing stored.

use provdb::storage::{ColumnKind, ColumnSpec};
use provdb::{Datanet, Error, IngestOptions};
use serde_json::json;

use crate::common::*;

fn assert_nothing_stored(db: &provdb::Db, name: &str, sequence_before: u64) {
    assert_eq!(record_count(db, name), 0);
    assert_eq!(db.store().sequence().unwrap(), sequence_before);
}

#[test]
fn invalid_utf8_names_the_line() {
    let (dir, db) = fresh_db();
    datanet(&db, "d", false);
    let path = dir.path().join("bad.jsonl");
    let mut bytes = format!(
        "{}\n",
        json!({"text": "ok", "contributor": address(&ALICE_KEY).to_string()})
    )
    .into_bytes();
    bytes.extend_from_slice(b"{\"text\": \"\xff\xfe\"}\n");
    std::fs::write(&path, bytes).unwrap();
    let before = db.store().sequence().unwrap();
    let error = db
        .ingest_file("d", &path, &IngestOptions::default())
        .unwrap_err();
    assert!(
        error.to_string().contains("line 2") && error.to_string().contains("UTF-8"),
        "{error}"
    );
    assert_nothing_stored(&db, "d", before);
}

#[test]
fn a_100_mb_line_is_refused_without_buffering_it() {
    let (dir, db) = fresh_db();
    datanet(&db, "d", false);
    let path = dir.path().join("huge.jsonl");
    let mut line = String::with_capacity(100 << 20);
    line.push_str("{\"text\": \"");
    line.push_str(&"a".repeat(100 << 20));
    line.push_str("\"}\n");
    std::fs::write(&path, line).unwrap();
    let before = db.store().sequence().unwrap();
    let error = db
        .ingest_file("d", &path, &IngestOptions::default())
        .unwrap_err();
    assert!(
        error.to_string().contains("line 1") && error.to_string().contains("longer than"),
        "{error}"
    );
    assert_nothing_stored(&db, "d", before);
}

#[test]
fn empty_files_are_refused() {
    let (dir, db) = fresh_db();
    datanet(&db, "d", false);
    let before = db.store().sequence().unwrap();
    for name in ["empty.jsonl", "empty.csv", "blank.jsonl"] {
        let path = dir.path().join(name);
        std::fs::write(&path, if name == "blank.jsonl" { "\n\n" } else { "" }).unwrap();
        let error = db
            .ingest_file("d", &path, &IngestOptions::default())
            .unwrap_err();
        assert!(error.is_user_error(), "{error}");
        assert!(
            error.to_string().contains("no records") || error.to_string().contains("empty"),
            "{error}"
        );
    }
    let not_parquet = dir.path().join("fake.parquet");
    std::fs::write(&not_parquet, "this is not parquet").unwrap();
    let error = db
        .ingest_file("d", &not_parquet, &IngestOptions::default())
        .unwrap_err();
    assert!(error.to_string().contains("Parquet"), "{error}");
    let unknown = dir.path().join("data.xml");
    std::fs::write(&unknown, "<x/>").unwrap();
    assert!(
        db.ingest_file("d", &unknown, &IngestOptions::default())
            .unwrap_err()
            .to_string()
            .contains("unknown input format")
    );
    assert_nothing_stored(&db, "d", before);
}

fn typed_datanet(db: &provdb::Db) {
    let mut spec = Datanet::new("typed");
    spec.schema = Some(vec![
        ColumnSpec {
            name: "text".into(),
            kind: ColumnKind::String,
            required: true,
        },
        ColumnSpec {
            name: "year".into(),
            kind: ColumnKind::Int,
            required: true,
        },
    ]);
    db.create_datanet(spec).unwrap();
}

#[test]
fn wrong_column_types_are_refused() {
    let (dir, db) = fresh_db();
    typed_datanet(&db);
    let alice = address(&ALICE_KEY).to_string();
    let before = db.store().sequence().unwrap();
    let rows = [
        json!({"text": "ok", "year": 1958, "contributor": alice}),
        json!({"text": "bad", "year": "1958", "contributor": alice}),
    ];
    let error = db
        .ingest_file(
            "typed",
            &write_rows(dir.path(), "t.jsonl", &rows),
            &IngestOptions::default(),
        )
        .unwrap_err();
    match &error {
        Error::Input { column, reason, .. } => {
            assert_eq!(column.as_deref(), Some("year"));
            assert!(reason.contains("expected int"), "{reason}");
        }
        other => panic!("{other}"),
    }
    let csv = dir.path().join("t.csv");
    std::fs::write(
        &csv,
        format!("text,year,contributor\nok,1958,{alice}\nbad,nineteen,{alice}\n"),
    )
    .unwrap();
    let error = db
        .ingest_file("typed", &csv, &IngestOptions::default())
        .unwrap_err();
    assert!(error.to_string().contains("nineteen"), "{error}");
    let extra = [json!({"text": "ok", "year": 1, "color": "red", "contributor": alice})];
    let error = db
        .ingest_file(
            "typed",
            &write_rows(dir.path(), "x.jsonl", &extra),
            &IngestOptions::default(),
        )
        .unwrap_err();
    assert!(
        error.to_string().contains("not in the datanet's schema"),
        "{error}"
    );
    assert_nothing_stored(&db, "typed", before);
}

#[test]
fn a_csv_missing_a_column_is_refused() {
    let (dir, db) = fresh_db();
    typed_datanet(&db);
    let before = db.store().sequence().unwrap();
    let csv = dir.path().join("m.csv");
    std::fs::write(
        &csv,
        format!("text,contributor\nno year,{}\n", address(&ALICE_KEY)),
    )
    .unwrap();
    let error = db
        .ingest_file("typed", &csv, &IngestOptions::default())
        .unwrap_err();
    match &error {
        Error::Input { column, reason, .. } => {
            assert_eq!(column.as_deref(), Some("year"));
            assert!(reason.contains("missing column"), "{reason}");
        }
        other => panic!("{other}"),
    }
    assert_nothing_stored(&db, "typed", before);
}

#[test]
fn not_json_objects_and_bad_provenance_values_are_refused() {
    let (dir, db) = fresh_db();
    datanet(&db, "d", false);
    let before = db.store().sequence().unwrap();
    for (line, needle) in [
        ("[1,2]".to_string(), "expected a JSON object"),
        ("{\"text\": ".to_string(), "invalid JSON"),
        (
            json!({"text": "x", "contributor": "0x12"}).to_string(),
            "invalid address",
        ),
        (
            json!({"text": "x", "contributor": address(&ALICE_KEY).to_string(), "quality": 3})
                .to_string(),
            "not in 0..1",
        ),
        (
            json!({"contributor": address(&ALICE_KEY).to_string()}).to_string(),
            "missing text column",
        ),
        (
            json!({"text": "x"}).to_string(),
            "missing: give a contributor",
        ),
    ] {
        let path = write_lines(dir.path(), "bad.jsonl", &[line]);
        let error = db
            .ingest_file("d", &path, &IngestOptions::default())
            .unwrap_err();
        assert!(error.to_string().contains(needle), "{needle}: {error}");
    }
    assert_nothing_stored(&db, "d", before);
}

/// The reader runs ahead of preparation (a chunk of 4,096 rows at a time, on another thread):
/// whichever bad row comes first in the file is the one named, whether the reader refuses it
/// (not UTF-8) or preparation does (no contributor), and nothing of the file is stored.
#[test]
fn the_first_bad_row_is_named_when_reading_runs_ahead_of_preparing() {
    let (dir, db) = fresh_db();
    datanet(&db, "d", false);
    let contributor = address(&ALICE_KEY).to_string();
    for (unpreparable, unreadable) in [(5_000, 12_000), (12_000, 5_000)] {
        let mut bytes = Vec::new();
        for line in 1..=13_000 {
            if line == unpreparable {
                bytes.extend_from_slice(br#"{"text": "nobody contributed this"}"#);
            } else if line == unreadable {
                bytes.extend_from_slice(b"{\"text\": \"\xff\xfe\"}");
            } else {
                let row = json!({"text": format!("row {line}"), "contributor": contributor});
                bytes.extend_from_slice(row.to_string().as_bytes());
            }
            bytes.push(b'\n');
        }
        let path = dir.path().join(format!("bad-{unpreparable}.jsonl"));
        std::fs::write(&path, bytes).unwrap();
        let before = db.store().sequence().unwrap();
        let error = db
            .ingest_file("d", &path, &IngestOptions::default())
            .unwrap_err()
            .to_string();
        let first = unpreparable.min(unreadable);
        let named = format!("line {first}");
        let after = error
            .find(&named)
            .map(|at| error[at + named.len()..].chars().next());
        assert!(matches!(after, Some(Some(',' | ':'))), "{error}");
        let why = if first == unreadable {
            "UTF-8"
        } else {
            "contributor"
        };
        assert!(error.contains(why), "{error}");
        assert_nothing_stored(&db, "d", before);
    }
}
