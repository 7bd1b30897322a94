//! Immutability: duplicates refused, updates as new versions, removals as tombstones.

use provdb::{ActingRole, Committer, IngestOptions, Status, VersionAct};
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

    let alice_acts = Committer::Principal(address(&ALICE_KEY));
    db.tombstone(&v2_id, alice_acts).unwrap();
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
        db.tombstone(&v2_id, alice_acts).is_err(),
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

fn ingest_as(
    db: &provdb::Db,
    dir: &std::path::Path,
    file: &str,
    rows: &[serde_json::Value],
    committer: Committer,
) -> provdb::Result<provdb::IngestReport> {
    let options = IngestOptions {
        committer,
        ..IngestOptions::default()
    };
    db.ingest_file("d", &write_rows(dir, file, rows), &options)
}

/// Bob supersedes and removes Alice's record, from the command line (his contributor column)
/// and as a key's principal: each attempt is refused whole, naming the rule, and Alice keeps
/// her record, her place in search and her right to version and remove it.
#[test]
fn another_contributor_cannot_supersede_or_remove_a_record() {
    let (dir, db) = fresh_db();
    datanet(&db, "d", false);
    let (alice, bob) = (address(&ALICE_KEY), address(&BOB_KEY));
    let original = json!({"text": "alice's result"});
    let mut row = original.clone();
    row["contributor"] = json!(alice.to_string());
    ingest_as(&db, dir.path(), "v1.jsonl", &[row], Committer::Contributors).unwrap();
    let v1 = id_of(&original);
    let before = db.store().sequence().unwrap();

    let innocent = json!({"text": "bob's own", "contributor": bob.to_string()});
    let takeover = json!({"text": "alice's result (better)", "contributor": bob.to_string(), "supersedes": v1.to_string()});
    for committer in [Committer::Contributors, Committer::Principal(bob)] {
        let error = ingest_as(
            &db,
            dir.path(),
            "takeover.jsonl",
            &[innocent.clone(), takeover.clone()],
            committer,
        )
        .unwrap_err()
        .to_string();
        let rule =
            format!("belongs to contributor {alice}; only {alice} or a curator of datanet 'd'");
        assert!(error.contains(&rule) && error.contains("line 2"), "{error}");
    }
    // Bob as a contributor column of Alice's address, but uploading it himself unsigned.
    let impersonation = json!({"text": "alice's result (by bob)", "contributor": alice.to_string(), "supersedes": v1.to_string()});
    let error = ingest_as(
        &db,
        dir.path(),
        "imp.jsonl",
        &[impersonation],
        Committer::Principal(bob),
    )
    .unwrap_err();
    assert!(error.to_string().contains("only"), "{error}");
    let error = db.tombstone(&v1, Committer::Principal(bob)).unwrap_err();
    assert!(
        error
            .to_string()
            .contains(&format!("belongs to contributor {alice}")),
        "{error}"
    );
    assert_eq!(db.store().sequence().unwrap(), before, "nothing stored");
    assert_eq!(db.store().superseded_by(&v1).unwrap(), None);
    assert_eq!(record_count(&db, "d"), 1);

    // Alice still versions her record, then removes it.
    let v2 = json!({"text": "alice's result, v2", "contributor": alice.to_string(), "supersedes": v1.to_string()});
    ingest_as(
        &db,
        dir.path(),
        "v2.jsonl",
        &[v2],
        Committer::Principal(alice),
    )
    .unwrap();
    let v2_id = id_of(&json!({"text": "alice's result, v2"}));
    let stored = db.record(&v2_id).unwrap().unwrap();
    assert_eq!(
        stored.act,
        Some(VersionAct {
            by: alice,
            role: ActingRole::Contributor
        })
    );
    db.tombstone(&v2_id, Committer::Principal(alice)).unwrap();
    assert!(db.store().superseded_by(&v2_id).unwrap().is_some());
}

/// The owner and curators may replace anyone's record, acting as curators, and each version
/// records who stored it and in which role, in `records` SQL too.
#[test]
fn curators_and_owners_act_as_curators_and_are_recorded() {
    let (dir, db) = fresh_db();
    let owner = address(&[0x33; 32]);
    let curator = address(&[0x44; 32]);
    let mut spec = provdb::Datanet::new("d");
    spec.owner = Some(owner);
    db.create_datanet(spec).unwrap();
    let datanet = db.store().datanet("d").unwrap();
    db.add_curator(&datanet, curator, owner).unwrap();
    let alice = address(&ALICE_KEY);
    let rows: Vec<_> = ["one", "two"]
        .iter()
        .map(|t| json!({"text": t, "contributor": alice.to_string()}))
        .collect();
    ingest_as(&db, dir.path(), "v1.jsonl", &rows, Committer::Contributors).unwrap();
    let (one, two) = (
        id_of(&json!({"text": "one"})),
        id_of(&json!({"text": "two"})),
    );
    let fixed = json!({"text": "one, fixed by a curator", "contributor": curator.to_string(), "supersedes": one.to_string()});
    ingest_as(
        &db,
        dir.path(),
        "fix.jsonl",
        &[fixed],
        Committer::Principal(curator),
    )
    .unwrap();
    db.tombstone(&two, Committer::Principal(owner)).unwrap();
    let fixed_id = id_of(&json!({"text": "one, fixed by a curator"}));
    let act = db.record(&fixed_id).unwrap().unwrap().act;
    assert_eq!(
        act,
        Some(VersionAct {
            by: curator,
            role: ActingRole::Curator
        })
    );
    let tombstone = db.store().superseded_by(&two).unwrap().unwrap();
    let act = db.record(&tombstone).unwrap().unwrap().act;
    assert_eq!(
        act,
        Some(VersionAct {
            by: owner,
            role: ActingRole::Owner
        })
    );

    let batches = db
        .sql(
            "SELECT stored_by, stored_as FROM records WHERE stored_as IS NOT NULL ORDER BY stored_as",
            provdb::Caller::admin(owner),
            provdb::QueryLimits::default(),
        )
        .unwrap()
        .batches;
    let batch = &batches[0];
    let text = |column: usize, row: usize| {
        use arrow_array::cast::AsArray;
        batch
            .column(column)
            .as_string::<i32>()
            .value(row)
            .to_string()
    };
    assert_eq!(batch.num_rows(), 2);
    assert_eq!(text(1, 0), "curator");
    assert_eq!(text(0, 0), curator.to_string());
    assert_eq!(text(1, 1), "owner");
}

/// An EIP-191 signature does not cover `supersedes`, so an uploader holding Alice's signed
/// row cannot use it to replace her record; an EIP-712 signature covers it, and so is her
/// word whoever uploads it.
#[test]
fn only_a_signature_that_covers_supersedes_speaks_for_the_contributor() {
    let (dir, db) = fresh_db();
    let mut spec = provdb::Datanet::new("d");
    spec.signatures.accepts_eip191 = true;
    spec.license = "CC-BY-4.0".into();
    db.create_datanet(spec).unwrap();
    let (alice, bob) = (address(&ALICE_KEY), address(&BOB_KEY));
    let v1 = json!({"text": "v1", "contributor": alice.to_string()});
    ingest_as(&db, dir.path(), "v1.jsonl", &[v1], Committer::Contributors).unwrap();
    let v1_id = id_of(&json!({"text": "v1"}));
    let mut legacy = eip191_signed_row(json!({"text": "v2 by alice"}), &ALICE_KEY);
    legacy["supersedes"] = json!(v1_id.to_string());
    let error = ingest_as(
        &db,
        dir.path(),
        "legacy.jsonl",
        &[legacy],
        Committer::Principal(bob),
    )
    .unwrap_err();
    assert!(error.to_string().contains("only"), "{error}");
    let mut typed = json!({"text": "v2 by alice", "supersedes": v1_id.to_string()});
    sign_row(&mut typed, &ALICE_KEY, "d");
    ingest_as(
        &db,
        dir.path(),
        "typed.jsonl",
        &[typed],
        Committer::Principal(bob),
    )
    .unwrap();
    let v2 = db
        .record(&id_of(&json!({"text": "v2 by alice"})))
        .unwrap()
        .unwrap();
    assert_eq!(
        v2.act,
        Some(VersionAct {
            by: alice,
            role: ActingRole::Contributor
        })
    );
}

/// With `skip_invalid`, the takeover row is listed as refused and the others are stored.
#[test]
fn a_takeover_row_is_rejected_alone_with_skip_invalid() {
    let (dir, db) = fresh_db();
    datanet(&db, "d", false);
    let (alice, bob) = (address(&ALICE_KEY), address(&BOB_KEY));
    let v1 = json!({"text": "mine", "contributor": alice.to_string()});
    ingest_as(&db, dir.path(), "v1.jsonl", &[v1], Committer::Contributors).unwrap();
    let v1_id = id_of(&json!({"text": "mine"}));
    let rows = [
        json!({"text": "bob's", "contributor": bob.to_string()}),
        json!({"text": "not yours", "contributor": bob.to_string(), "supersedes": v1_id.to_string()}),
    ];
    let options = IngestOptions {
        committer: Committer::Principal(bob),
        skip_invalid: true,
        ..IngestOptions::default()
    };
    let report = db
        .ingest_file("d", &write_rows(dir.path(), "mixed.jsonl", &rows), &options)
        .unwrap();
    assert_eq!((report.accepted, report.rejected), (1, 1));
    let rejects = std::fs::read_to_string(report.rejects_file.unwrap()).unwrap();
    assert!(
        rejects.contains("\"line\":2") && rejects.contains("belongs to contributor"),
        "{rejects}"
    );
    assert_eq!(db.store().superseded_by(&v1_id).unwrap(), None);
}
