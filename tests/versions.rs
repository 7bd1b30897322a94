//! Immutability: duplicates refused, updates as new versions, removals as tombstones.

use provdb::{IngestOptions, Status};
use serde_json::json;

use crate::common::*;

#[test]
fn duplicates_are_refused_within_and_across_inputs() {
    let (dir, db) = fresh_db();
    datanet(&db, "d", false);
    let row = json!({"text": "same", "contributor": address(&ALICE_KEY).to_string()});
    let twice = write_rows(dir.path(), "twice.jsonl", &[row.clone(), row.clone()]);
    let error = db
        .ingest_file("d", &twice, &IngestOptions::default())
        .unwrap_err();
    assert!(
        error.to_string().contains("line 2") && error.to_string().contains("duplicate"),
        "{error}"
    );
    assert_eq!(record_count(&db, "d"), 0);

    let once = write_rows(dir.path(), "once.jsonl", &[row]);
    db.ingest_file("d", &once, &IngestOptions::default())
        .unwrap();
    let error = db
        .ingest_file("d", &once, &IngestOptions::default())
        .unwrap_err();
    assert!(error.to_string().contains("already stored"), "{error}");
    assert_eq!(record_count(&db, "d"), 1);
}

/// Files of one call are prepared while the one before commits, so a record that repeats one
/// of an earlier file of the same call is found by the commit's own check; the error still
/// names the row, and `skip_invalid` still stores the others.
#[test]
fn a_record_repeated_from_an_earlier_file_of_the_same_call_is_named_by_line() {
    let (dir, db) = fresh_db();
    datanet(&db, "d", false);
    let alice = address(&ALICE_KEY).to_string();
    let row = |text: &str| json!({"text": text, "contributor": alice});
    let first = write_rows(dir.path(), "first.jsonl", &[row("one"), row("two")]);
    let second = write_rows(
        dir.path(),
        "second.jsonl",
        &[row("three"), row("two"), row("four")],
    );
    let files = [first.clone(), second.clone()];
    let error = db
        .ingest_files(
            "d",
            &files,
            &IngestOptions::default(),
            &|_, _| {},
            &mut |_| {},
        )
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("second.jsonl")
            && message.contains("line 2")
            && message.contains("already stored"),
        "{message}"
    );
    assert_eq!(
        record_count(&db, "d"),
        2,
        "the first file stays, nothing of the second"
    );

    let (dir, db) = fresh_db();
    datanet(&db, "d", false);
    let first = write_rows(dir.path(), "first.jsonl", &[row("one"), row("two")]);
    let second = write_rows(
        dir.path(),
        "second.jsonl",
        &[row("three"), row("two"), row("four")],
    );
    let options = IngestOptions {
        skip_invalid: true,
        ..Default::default()
    };
    let reports = db
        .ingest_files("d", &[first, second], &options, &|_, _| {}, &mut |_| {})
        .unwrap();
    assert_eq!(reports[1].accepted, 2);
    assert_eq!(reports[1].rejected, 1);
    let rejects = std::fs::read_to_string(reports[1].rejects_file.as_ref().unwrap()).unwrap();
    assert!(
        rejects.contains("\"line\":2") && rejects.contains("already stored"),
        "{rejects}"
    );
    assert_eq!(record_count(&db, "d"), 4);
}

#[test]
fn a_new_version_supersedes_and_the_old_stays_readable() {
    let (dir, db) = fresh_db();
    datanet(&db, "d", false);
    let alice = address(&ALICE_KEY).to_string();
    let v1 = json!({"text": "draft", "contributor": alice});
    db.ingest_file(
        "d",
        &write_rows(dir.path(), "v1.jsonl", &[v1]),
        &IngestOptions::default(),
    )
    .unwrap();
    let v1_id = id_of(&json!({"text": "draft"}));
    let v2 = json!({"text": "final", "contributor": alice, "supersedes": v1_id.to_string()});
    db.ingest_file(
        "d",
        &write_rows(dir.path(), "v2.jsonl", &[v2]),
        &IngestOptions::default(),
    )
    .unwrap();
    let v2_id = id_of(&json!({"text": "final"}));

    let old = db.record(&v1_id).unwrap().expect("old version kept");
    let new = db.record(&v2_id).unwrap().unwrap();
    assert_eq!((old.version, new.version), (1, 2));
    assert_eq!(new.supersedes, Some(v1_id));
    assert_eq!(db.store().superseded_by(&v1_id).unwrap(), Some(v2_id));

    let fork = json!({"text": "fork", "contributor": alice, "supersedes": v1_id.to_string()});
    let error = db
        .ingest_file(
            "d",
            &write_rows(dir.path(), "fork.jsonl", &[fork]),
            &IngestOptions::default(),
        )
        .unwrap_err();
    assert!(error.to_string().contains("already superseded"), "{error}");

    db.tombstone(&v2_id, address(&BOB_KEY)).unwrap();
    let tombstone_id = db
        .store()
        .superseded_by(&v2_id)
        .unwrap()
        .expect("tombstoned");
    let tombstone = db.record(&tombstone_id).unwrap().unwrap();
    assert_eq!(
        (tombstone.status, tombstone.version, tombstone.chunk_count()),
        (Status::Tombstoned, 3, 0)
    );
    assert!(db.record(&v2_id).unwrap().is_some(), "history kept");
    let info = db.datanet_info("d").unwrap();
    assert_eq!((info.stats.records, info.stats.tombstones), (3, 1));
    assert!(
        db.tombstone(&v2_id, address(&BOB_KEY)).is_err(),
        "a removed record cannot be removed twice"
    );
}

#[test]
fn status_changes_are_sequenced_and_tombstones_are_final() {
    let (dir, db) = fresh_db();
    datanet(&db, "d", false);
    let row = json!({"text": "curate me", "contributor": address(&ALICE_KEY).to_string()});
    db.ingest_file(
        "d",
        &write_rows(dir.path(), "r.jsonl", &[row]),
        &IngestOptions::default(),
    )
    .unwrap();
    let id = id_of(&json!({"text": "curate me"}));
    let before = db.store().sequence().unwrap();
    assert_eq!(db.set_status(&id, Status::Rejected).unwrap(), before + 1);
    assert_eq!(db.record(&id).unwrap().unwrap().status, Status::Rejected);
    assert!(db.set_status(&id, Status::Tombstoned).is_err());
    let log = db.store().log_since(before).unwrap();
    assert_eq!(log.len(), 1);
}
