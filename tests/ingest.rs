//! Ingest round trips, all-or-nothing files, rejects, formats.

use std::sync::Arc;

use arrow_array::{Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use provdb::storage::{Status, records_to_batch};
use provdb::{Error, IngestOptions, Location};
use serde_json::json;

use crate::common::*;

#[test]
fn every_provenance_column_round_trips_and_exports_to_arrow() {
    let (dir, db) = fresh_db();
    datanet(&db, "papers", true);
    let mut row = json!({"text": "lift of a wing in a slipstream", "title": "wings", "year": 1958});
    row["license"] = json!("MIT");
    row["created_at"] = json!(1_700_000_000_123i64);
    sign_row(&mut row, &ALICE_KEY, "papers");
    row["quality"] = json!(0.75);
    let path = write_rows(dir.path(), "one.jsonl", &[row.clone()]);
    let report = db
        .ingest_file("papers", &path, &IngestOptions::default())
        .unwrap();
    assert_eq!((report.accepted, report.rejected, report.chunks), (1, 0, 1));

    let id =
        id_of(&json!({"text": "lift of a wing in a slipstream", "title": "wings", "year": 1958}));
    let record = db.record(&id).unwrap().expect("stored");
    assert_eq!(record.contributor, address(&ALICE_KEY));
    assert_eq!(record.license, "MIT");
    assert_eq!(record.created_at_ms, 1_700_000_000_123);
    assert_eq!(record.quality, Some(0.75));
    assert_eq!(record.version, 1);
    assert_eq!(record.supersedes, None);
    assert_eq!(record.status, Status::Approved);
    assert_eq!(record.sequence, report.sequence.unwrap());
    assert_eq!(
        format!("0x{}", hex::encode(record.signature.as_ref().unwrap())),
        row["signature"].as_str().unwrap()
    );
    assert_eq!(
        record.content,
        r#"{"text":"lift of a wing in a slipstream","title":"wings","year":1958}"#
    );
    let chunks = db.store().chunks_of(&record).unwrap();
    assert_eq!(chunks.len(), 1);
    assert_eq!(chunks[0].text, "lift of a wing in a slipstream");

    let info = db.datanet_info("papers").unwrap();
    let datanet = db.store().datanet("papers").unwrap();
    let batch = records_to_batch(&datanet, &db.records("papers", 10).unwrap()).unwrap();
    assert_eq!(batch.num_rows(), 1);
    let text = |name: &str| {
        batch
            .column_by_name(name)
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap()
            .value(0)
            .to_string()
    };
    assert_eq!(text("record_id"), id.to_string());
    assert_eq!(text("contributor"), address(&ALICE_KEY).to_string());
    assert_eq!(text("license"), "MIT");
    assert_eq!(text("status"), "approved");
    assert_eq!(text("datanet"), "papers");
    assert_eq!(text("signature"), row["signature"].as_str().unwrap());
    assert_eq!(text("signature_scheme"), "eip712");
    let created = batch
        .column_by_name("created_at")
        .unwrap()
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap();
    assert_eq!(created.value(0), 1_700_000_000_123);
    assert!(batch.column_by_name("supersedes").unwrap().is_null(0));
    assert_eq!(
        (
            info.stats.records,
            info.stats.chunks,
            info.stats.contributors
        ),
        (1, 1, 1)
    );
}

#[test]
fn a_bad_line_in_the_middle_stores_nothing_and_names_the_line() {
    let (dir, db) = fresh_db();
    datanet(&db, "notes", false);
    let lines = vec![
        json!({"text": "first", "contributor": address(&ALICE_KEY).to_string()}).to_string(),
        json!({"text": 42, "contributor": address(&ALICE_KEY).to_string()}).to_string(),
        json!({"text": "third", "contributor": address(&ALICE_KEY).to_string()}).to_string(),
    ];
    let path = write_lines(dir.path(), "mixed.jsonl", &lines);
    let sequence_before = db.store().sequence().unwrap();
    let error = db
        .ingest_file("notes", &path, &IngestOptions::default())
        .unwrap_err();
    match &error {
        Error::Input {
            location, column, ..
        } => {
            assert_eq!(*location, Location::Line(2));
            assert_eq!(column.as_deref(), Some("text"));
        }
        other => panic!("unexpected {other}"),
    }
    assert!(error.to_string().contains("line 2"), "{error}");
    assert_eq!(record_count(&db, "notes"), 0);
    assert_eq!(db.store().sequence().unwrap(), sequence_before);

    let options = IngestOptions {
        skip_invalid: true,
        ..IngestOptions::default()
    };
    let report = db.ingest_file("notes", &path, &options).unwrap();
    assert_eq!((report.accepted, report.rejected), (2, 1));
    let rejects = std::fs::read_to_string(report.rejects_file.unwrap()).unwrap();
    let reject: serde_json::Value = serde_json::from_str(rejects.trim()).unwrap();
    assert_eq!(reject["line"], 2);
    assert_eq!(reject["column"], "text");
    assert_eq!(record_count(&db, "notes"), 2);
}

#[test]
fn csv_provenance_numbers_are_read_from_their_text() {
    let (dir, db) = fresh_db();
    datanet(&db, "typed", false);
    let alice = address(&ALICE_KEY).to_string();
    let csv = dir.path().join("rows.csv");
    std::fs::write(
        &csv,
        format!("text,quality,created_at,contributor\nfirst,0.25,1700000000123,{alice}\n"),
    )
    .unwrap();
    db.ingest_file("typed", &csv, &IngestOptions::default())
        .unwrap();
    let record = db
        .record(&id_of(&json!({"text": "first"})))
        .unwrap()
        .unwrap();
    assert_eq!(
        (record.quality, record.created_at_ms),
        (Some(0.25), 1_700_000_000_123)
    );
    for (bad, column) in [
        ("first,high,1,", "quality"),
        ("first,0.5,yesterday,", "created_at"),
    ] {
        std::fs::write(
            &csv,
            format!("text,quality,created_at,contributor\n{bad}{alice}\n"),
        )
        .unwrap();
        let error = db
            .ingest_file("typed", &csv, &IngestOptions::default())
            .unwrap_err()
            .to_string();
        assert!(error.contains(&format!("column '{column}'")), "{error}");
    }
}

#[test]
fn csv_parquet_and_arrow_batches_ingest() {
    let (dir, db) = fresh_db();
    datanet(&db, "mixed", false);
    let alice = address(&ALICE_KEY).to_string();
    let csv = dir.path().join("rows.csv");
    std::fs::write(
        &csv,
        format!(
            "text,topic,contributor\n\"hello, world\",greeting,{alice}\nsecond row,other,{alice}\n"
        ),
    )
    .unwrap();
    let report = db
        .ingest_file("mixed", &csv, &IngestOptions::default())
        .unwrap();
    assert_eq!(report.accepted, 2);
    let first = db
        .record(&id_of(
            &json!({"text": "hello, world", "topic": "greeting"}),
        ))
        .unwrap();
    assert!(
        first.is_some(),
        "CSV quoting kept the comma inside the text"
    );

    let schema = Arc::new(Schema::new(vec![
        Field::new("text", DataType::Utf8, false),
        Field::new("n", DataType::Int64, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(vec!["parquet one", "parquet two"])),
            Arc::new(Int64Array::from(vec![Some(1), None])),
        ],
    )
    .unwrap();
    let parquet_path = dir.path().join("rows.parquet");
    let mut writer = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(&parquet_path).unwrap(),
        schema.clone(),
        None,
    )
    .unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let options = IngestOptions {
        contributor: Some(address(&BOB_KEY)),
        ..IngestOptions::default()
    };
    assert_eq!(
        db.ingest_file("mixed", &parquet_path, &options)
            .unwrap()
            .accepted,
        2
    );
    let with_null = db
        .record(&id_of(&json!({"text": "parquet two"})))
        .unwrap()
        .expect("null column left out");
    assert_eq!(with_null.contributor, address(&BOB_KEY));

    let arrow_batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec!["arrow one"])),
            Arc::new(Int64Array::from(vec![Some(7)])),
        ],
    )
    .unwrap();
    assert_eq!(
        db.ingest_batch("mixed", &arrow_batch, &options)
            .unwrap()
            .accepted,
        1
    );
    assert!(
        db.record(&id_of(&json!({"text": "arrow one", "n": 7})))
            .unwrap()
            .is_some()
    );
    assert_eq!(record_count(&db, "mixed"), 5);
    assert_eq!(db.datanet_info("mixed").unwrap().stats.contributors, 2);
}

#[test]
fn data_survives_reopening() {
    let (dir, db) = fresh_db();
    datanet(&db, "durable", false);
    let rows = vec![json!({"text": "kept", "contributor": address(&ALICE_KEY).to_string()})];
    let path = write_rows(dir.path(), "kept.jsonl", &rows);
    let sequence = db
        .ingest_file("durable", &path, &IngestOptions::default())
        .unwrap()
        .sequence;
    drop(db);
    let db = provdb::Db::open(dir.path().join("data")).unwrap();
    assert_eq!(record_count(&db, "durable"), 1);
    assert_eq!(Some(db.store().sequence().unwrap()), sequence);
    assert!(matches!(
        provdb::Db::open(dir.path().join("nothing")),
        Err(Error::NotInitialized(_))
    ));
}

#[test]
fn unknown_datanet_is_a_user_error() {
    let (dir, db) = fresh_db();
    let path = write_rows(dir.path(), "x.jsonl", &[json!({"text": "x"})]);
    let error = db
        .ingest_file("missing", &path, &IngestOptions::default())
        .unwrap_err();
    assert!(error.is_user_error());
    assert!(
        error.to_string().contains("unknown datanet 'missing'"),
        "{error}"
    );
}
