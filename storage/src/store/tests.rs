//! Store tests on a real RocksDB in a temporary directory.

use super::*;
use crate::model::{ChunkingConfig, NewChunk, NewRecord, Record, RecordId, Status};

fn datanet(name: &str) -> Datanet {
    Datanet {
        id: 99,
        name: name.into(),
        description: String::new(),
        license: "MIT".into(),
        text_column: "text".into(),
        schema: None,
        require_signatures: false,
        signatures: crate::SignaturePolicy::default(),
        near_duplicates: crate::model::NearDuplicatePolicy::default(),
        visibility: crate::model::Visibility::Public,
        owner: None,
        initial_status: Status::Approved,
        chunking: ChunkingConfig::default(),
        created_at_ms: 1,
    }
}

fn new_record(text: &str) -> NewRecord {
    let content = format!("{{\"text\":\"{text}\"}}");
    let mut record = NewRecord::new(content, Some((8, 10 + text.len() as u32)), Address([1; 20]));
    record.license = "MIT".into();
    record.created_at_ms = 5;
    record.quality = Some(0.5);
    record
        .set_chunks(vec![NewChunk {
            start_byte: 0,
            end_byte: text.len() as u32,
        }])
        .unwrap();
    record
}

fn open(dir: &std::path::Path) -> Store {
    Store::open(
        dir,
        StoreOptions {
            sync_writes: false,
            create_if_missing: true,
            ..StoreOptions::default()
        },
    )
    .unwrap()
}

#[test]
fn a_refused_batch_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let id = store.create_datanet(datanet("d")).unwrap().id;
    store.commit_records(id, vec![new_record("a")]).unwrap();
    let sequence = store.sequence().unwrap();
    let error = store
        .commit_records(id, vec![new_record("b"), new_record("a")])
        .unwrap_err();
    assert!(matches!(error, StorageError::DuplicateRecord(_)), "{error}");
    assert_eq!(store.sequence().unwrap(), sequence);
    assert!(
        store
            .record(&new_record("b").record_id())
            .unwrap()
            .is_none()
    );
    assert_eq!(store.stats(id).unwrap().records, 1);
    assert!(matches!(
        store.commit_records(77, vec![new_record("z")]),
        Err(StorageError::UnknownDatanet(_))
    ));
}

#[test]
fn counters_and_chunk_ids_continue_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (first, id) = {
        let store = open(dir.path());
        let id = store.create_datanet(datanet("d")).unwrap().id;
        (
            store
                .commit_records(id, vec![new_record("a"), new_record("b")])
                .unwrap(),
            id,
        )
    };
    let store = open(dir.path());
    assert_eq!(store.sequence().unwrap(), first.sequence);
    let second = store.commit_records(id, vec![new_record("c")]).unwrap();
    assert_eq!(second.sequence, first.sequence + 1);
    assert_eq!(second.first_chunk_id, first.first_chunk_id + 2);
    let record: Record = store.record(&new_record("c").record_id()).unwrap().unwrap();
    assert_eq!(
        store.chunks_of(&record).unwrap()[0].chunk_id,
        second.first_chunk_id
    );
    let listed: Vec<RecordId> = store
        .scan_records(id)
        .unwrap()
        .map(|r| r.unwrap().record_id)
        .collect();
    assert_eq!(
        listed,
        vec![
            new_record("a").record_id(),
            new_record("b").record_id(),
            new_record("c").record_id()
        ]
    );
    assert!(matches!(
        store.create_datanet(datanet("d")),
        Err(StorageError::DatanetExists(_))
    ));
    assert!(matches!(
        store.create_datanet(datanet("9bad")),
        Err(StorageError::Invalid(_))
    ));
}

#[test]
fn the_log_replays_every_change_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let id = store.create_datanet(datanet("d")).unwrap().id;
    let receipt = store.commit_records(id, vec![new_record("a")]).unwrap();
    let record_id = new_record("a").record_id();
    store.set_status(&record_id, Status::Slashed).unwrap();
    let grant = Grant {
        datanet_id: id,
        grantee: Address([9; 20]),
        granted_by: None,
        granted_at_ms: 3,
    };
    store.grant(&grant).unwrap();
    assert!(store.has_grant(id, &Address([9; 20])).unwrap());
    store.revoke(id, &Address([9; 20])).unwrap();
    assert!(!store.has_grant(id, &Address([9; 20])).unwrap());
    let log = store.log_since(0).unwrap();
    let sequences: Vec<u64> = log.iter().map(|(s, _)| *s).collect();
    assert_eq!(sequences, vec![1, 2, 3, 4, 5]);
    assert!(
        matches!(&log[1].1, LogEntry::Ingest { first_chunk_id, end_chunk_id, .. } if *first_chunk_id == receipt.first_chunk_id && *end_chunk_id == receipt.first_chunk_id + 1)
    );
    assert_eq!(
        log[2].1,
        LogEntry::StatusChanged {
            record_id,
            status: Status::Slashed
        }
    );
    assert_eq!(store.log_since(4).unwrap().len(), 1);
}

#[test]
fn damaged_values_are_reported_as_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let id = store.create_datanet(datanet("d")).unwrap().id;
    store.commit_records(id, vec![new_record("a")]).unwrap();
    let record_id = new_record("a").record_id();
    let cf = store.cf(CF_RECORDS).unwrap();
    store
        .raw_db()
        .put_cf(cf, record_id.0, [0xff, 0xff, 0xff])
        .unwrap();
    let error = store.record(&record_id).unwrap_err();
    assert!(
        matches!(error, StorageError::Corruption { cf: "records", .. }),
        "{error}"
    );
    assert!(!error.is_user_error());
}

#[test]
fn chunks_are_found_by_id_across_records() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let id = store.create_datanet(datanet("d")).unwrap().id;
    let text = "alpha beta gamma";
    let content = format!("{{\"text\":\"{text}\"}}");
    let mut three = NewRecord::new(content, Some((8, 10 + text.len() as u32)), Address([2; 20]));
    assert!(
        three
            .set_chunks(vec![NewChunk {
                start_byte: 0,
                end_byte: 99
            }])
            .is_err()
    );
    assert!(
        three
            .set_chunks(vec![NewChunk {
                start_byte: 3,
                end_byte: 3
            }])
            .is_err()
    );
    let ranges = [(0, 6), (6, 11), (11, 16)];
    three
        .set_chunks(
            ranges
                .iter()
                .map(|&(s, e)| NewChunk {
                    start_byte: s,
                    end_byte: e,
                })
                .collect(),
        )
        .unwrap();
    let mut none = NewRecord::new("{\"x\":1}".into(), None, Address([2; 20]));
    assert!(
        none.set_chunks(vec![NewChunk {
            start_byte: 0,
            end_byte: 1
        }])
        .is_err(),
        "no text, no chunks"
    );
    let receipt = store
        .commit_records(id, vec![new_record("one"), none, three, new_record("last")])
        .unwrap();
    assert_eq!(receipt.chunks, 5);
    let first = receipt.first_chunk_id;
    let all = store.chunks_in(first, first + 5).unwrap();
    let texts: Vec<&str> = all.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(texts, vec!["one", "alpha ", "beta ", "gamma", "last"]);
    let middle = store.chunk(first + 2).unwrap().unwrap();
    assert_eq!((middle.text.as_str(), middle.ordinal), ("beta ", 1));
    assert_eq!(store.chunks_in(first + 2, first + 4).unwrap().len(), 2);
    assert!(store.chunk(first + 5).unwrap().is_none());
}

#[test]
fn pages_list_records_in_order_and_find_every_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let id = store.create_datanet(datanet("d")).unwrap().id;
    // More than one page, with chunkless records at and around the page boundary.
    let mut records = Vec::new();
    for n in 0..(super::pages::PAGE_RECORDS + 300) {
        if (4090..4100).contains(&n) {
            records.push(NewRecord::new(
                format!("{{\"x\":{n}}}"),
                None,
                Address([3; 20]),
            ));
        } else {
            records.push(new_record(&format!("r{n}")));
        }
    }
    let ids: Vec<RecordId> = records.iter().map(|r| r.record_id()).collect();
    let receipt = store.commit_records(id, records).unwrap();
    let later = store.commit_records(id, vec![new_record("after")]).unwrap();
    let scanned: Vec<RecordId> = store
        .scan_records(id)
        .unwrap()
        .map(|r| r.unwrap().record_id)
        .collect();
    assert_eq!(&scanned[..ids.len()], &ids[..]);
    assert_eq!(scanned.len(), ids.len() + 1);
    let all = store
        .chunks_in(receipt.first_chunk_id, later.first_chunk_id + 1)
        .unwrap();
    assert_eq!(all.len(), receipt.chunks + 1);
    for (offset, chunk) in all.iter().enumerate() {
        assert_eq!(chunk.chunk_id, receipt.first_chunk_id + offset as u64);
        let alone = store.chunk(chunk.chunk_id).unwrap().unwrap();
        assert_eq!(&alone, chunk);
    }
    assert_eq!(all.last().unwrap().text, "after");
    assert_eq!(
        all[4090].text, "r4100",
        "chunkless records take no chunk ids"
    );
}

/// A batch prepared for one start and committed at another (a batch came in between) is
/// encoded again for where the store stands: the same outcome as a batch committed directly.
#[test]
fn a_prepared_batch_committed_elsewhere_than_assumed_gets_the_actual_ids() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let id = store.create_datanet(datanet("d")).unwrap().id;
    let start = store.next_batch_start().unwrap();
    let ahead = store
        .prepare_batch(
            id,
            vec![new_record("a"), new_record("b")],
            crate::Committer::Contributors,
            start,
        )
        .unwrap();
    let behind = store
        .prepare_batch(
            id,
            vec![new_record("c")],
            crate::Committer::Contributors,
            start.after(ahead.chunks()),
        )
        .unwrap();
    let between = store.commit_records(id, vec![new_record("x")]).unwrap();
    assert_eq!(between.sequence, start.sequence);
    let first = store.try_commit_prepared(ahead).unwrap();
    let second = store.try_commit_prepared(behind).unwrap();
    assert_eq!(
        (first.sequence, first.first_chunk_id),
        (between.sequence + 1, between.first_chunk_id + 1)
    );
    assert_eq!(
        (second.sequence, second.first_chunk_id),
        (first.sequence + 1, first.first_chunk_id + 2)
    );
    for (text, chunk_id, sequence) in [
        ("x", between.first_chunk_id, between.sequence),
        ("a", first.first_chunk_id, first.sequence),
        ("b", first.first_chunk_id + 1, first.sequence),
        ("c", second.first_chunk_id, second.sequence),
    ] {
        let record = store
            .record(&new_record(text).record_id())
            .unwrap()
            .unwrap();
        assert_eq!(
            (record.first_chunk_id, record.sequence),
            (chunk_id, sequence)
        );
        assert_eq!(store.chunk(chunk_id).unwrap().unwrap().text, text);
    }
    // Prepared for where the store is: the writes built ahead are the ones committed.
    let start = store.next_batch_start().unwrap();
    let prepared = store
        .prepare_batch(
            id,
            vec![new_record("d")],
            crate::Committer::Contributors,
            start,
        )
        .unwrap();
    let receipt = store.try_commit_prepared(prepared).unwrap();
    assert_eq!(
        (receipt.sequence, receipt.first_chunk_id),
        (start.sequence, start.first_chunk_id)
    );
    let record = store.record(&new_record("d").record_id()).unwrap().unwrap();
    assert_eq!(
        store.chunk(record.first_chunk_id).unwrap().unwrap().text,
        "d"
    );
    // A duplicate in a prepared batch is refused with its records given back.
    let start = store.next_batch_start().unwrap();
    let refused = store
        .prepare_batch(
            id,
            vec![new_record("e"), new_record("a")],
            crate::Committer::Contributors,
            start,
        )
        .unwrap();
    let uncommitted = store.try_commit_prepared(refused).unwrap_err();
    assert!(matches!(
        uncommitted.error,
        StorageError::DuplicateRecord(_)
    ));
    assert_eq!(uncommitted.records.len(), 2);
    assert_eq!(store.next_batch_start().unwrap(), start);
}

#[test]
fn a_near_duplicate_policy_is_kept_across_reopen_and_logged() {
    use crate::model::{NearDuplicateAction, NearDuplicatePolicy};
    let dir = tempfile::tempdir().unwrap();
    let policy = NearDuplicatePolicy {
        action: NearDuplicateAction::Refuse,
        threshold_bps: 8_500,
        across_datanets: true,
    };
    {
        let store = open(dir.path());
        let id = store.create_datanet(datanet("d")).unwrap().id;
        assert_eq!(
            store.datanet("d").unwrap().near_duplicates,
            NearDuplicatePolicy::default()
        );
        let zero = NearDuplicatePolicy {
            threshold_bps: 0,
            ..policy
        };
        assert!(store.set_near_duplicate_policy(id, zero, None).is_err());
        assert!(store.set_near_duplicate_policy(77, policy, None).is_err());
        let by = Some(Address([7; 20]));
        let sequence = store.set_near_duplicate_policy(id, policy, by).unwrap();
        let log = store.log_since(sequence - 1).unwrap();
        assert_eq!(
            log[0].1,
            LogEntry::NearDuplicatePolicySet {
                datanet_id: id,
                action: "refuse".into(),
                threshold_bps: 8_500,
                across_datanets: true,
                set_by: by,
            }
        );
    }
    let store = open(dir.path());
    let datanet = store.datanet("d").unwrap();
    assert_eq!(datanet.near_duplicates, policy);
    assert_eq!(datanet.signatures, crate::SignaturePolicy::default());
}
