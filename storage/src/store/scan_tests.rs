//! Tests of the in-place scans (`scan`) and the contributor index (`by_contributor`).

use std::collections::BTreeMap;

use super::*;
use crate::model::{ChunkingConfig, NewRecord, RecordId, Status, Visibility};
use crate::view::RecordView;

fn open(dir: &std::path::Path) -> Store {
    let options = StoreOptions {
        sync_writes: false,
        create_if_missing: true,
        ..StoreOptions::default()
    };
    Store::open(dir, options).unwrap()
}

fn datanet(name: &str) -> Datanet {
    Datanet {
        id: 0,
        name: name.into(),
        description: String::new(),
        license: "MIT".into(),
        text_column: "text".into(),
        schema: None,
        require_signatures: false,
        signatures: crate::SignaturePolicy::default(),
        near_duplicates: crate::model::NearDuplicatePolicy::default(),
        visibility: Visibility::Public,
        owner: None,
        initial_status: Status::Approved,
        chunking: ChunkingConfig::default(),
        created_at_ms: 1,
    }
}

/// A record with text `text` by contributor `who`, created at `at`.
fn record(text: &str, who: u8, at: i64) -> NewRecord {
    let content = format!("{{\"text\":\"{text}\"}}");
    let span = Some((8, 10 + text.len() as u32));
    let mut record = NewRecord::new(content, span, Address([who; 20]));
    record.license = "MIT".into();
    record.created_at_ms = at;
    record
}

/// Two Datanets, `a` with 300 records in three batches, `b` with 50.
fn populated(store: &Store) -> (u32, u32) {
    let a = store.create_datanet(datanet("a")).unwrap().id;
    let b = store.create_datanet(datanet("b")).unwrap().id;
    for batch in 0..3 {
        let records = (0..100)
            .map(|i| record(&format!("a{batch}-{i}"), (i % 7) as u8, i64::from(i) - 50))
            .collect();
        store.commit_records(a, records).unwrap();
    }
    let records = (0..50).map(|i| record(&format!("b{i}"), 1, i)).collect();
    store.commit_records(b, records).unwrap();
    (a, b)
}

fn visited(
    scan: impl Fn(&mut dyn FnMut(RecordView<'_>) -> Result<bool>) -> Result<()>,
) -> Vec<RecordId> {
    let mut ids = Vec::new();
    scan(&mut |view| {
        ids.push(view.record_id);
        Ok(true)
    })
    .unwrap();
    ids
}

#[test]
fn every_record_is_visited_once_whatever_the_number_of_parts() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (a, b) = populated(&store);
    let in_order = |id| -> Vec<RecordId> {
        store
            .scan_records(id)
            .unwrap()
            .map(|r| r.unwrap().record_id)
            .collect()
    };
    let mut all: Vec<RecordId> = [in_order(a), in_order(b)].concat();
    all.sort();
    assert_eq!(store.total_records().unwrap(), 350);
    for parts in 1..5 {
        let mut ids: Vec<RecordId> = (0..parts)
            .flat_map(|part| visited(|v| store.visit_all_records(part, parts, v)))
            .collect();
        let sorted = {
            let mut sorted = ids.clone();
            sorted.sort();
            sorted
        };
        if parts == 1 {
            assert_eq!(ids, sorted, "one part is in id order");
        }
        ids.sort();
        assert_eq!(ids, all, "{parts} parts");
        let mut pages: Vec<RecordId> = (0..parts)
            .flat_map(|part| visited(|v| store.visit_datanet_records(a, part, parts, v)))
            .collect();
        if parts == 1 {
            assert_eq!(pages, in_order(a), "one part is in ingest order");
        }
        pages.sort();
        let mut expected = in_order(a);
        expected.sort();
        assert_eq!(pages, expected, "{parts} parts of datanet a's pages");
    }
    assert!(
        store
            .visit_all_records(2, 2, &mut |_| Ok::<bool, StorageError>(true))
            .is_err()
    );
}

#[test]
fn a_view_read_in_place_is_the_stored_record() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    populated(&store);
    let id = record("b7", 1, 7).record_id();
    store.set_status(&id, Status::Rejected).unwrap();
    let stored = store.record(&id).unwrap().unwrap();
    let mut seen = 0;
    store
        .visit_records_by_id(&[RecordId([0; 32]), id], &mut |view| {
            assert_eq!(view, stored.view());
            assert_eq!(view.status, Status::Rejected);
            assert_eq!(view.text().unwrap().as_deref(), Some("b7"));
            seen += 1;
            Ok::<bool, StorageError>(true)
        })
        .unwrap();
    assert_eq!(seen, 1, "a missing id is skipped");
    let mut calls = 0;
    store
        .visit_all_records(0, 1, &mut |_| {
            calls += 1;
            Ok::<bool, StorageError>(calls < 3)
        })
        .unwrap();
    assert_eq!(calls, 3, "a visit that returns false stops the scan");
}

#[test]
fn the_contributor_index_lists_a_contributors_records_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (a, b) = populated(&store);
    let who = Address([3; 20]);
    let times = |from, to| -> Vec<i64> {
        let mut times = Vec::new();
        store
            .visit_contributor_records(a, &who, from, to, &mut |view| {
                assert_eq!(view.contributor, who);
                assert_eq!(view.datanet_id, a);
                times.push(view.created_at_ms);
                Ok::<bool, StorageError>(true)
            })
            .unwrap();
        times
    };
    // Contributor 3 wrote records i = 3, 10, 17, ... of each batch, created at i - 50.
    let every: Vec<i64> = (0..100).filter(|i| i % 7 == 3).map(|i| i - 50).collect();
    let mut expected: Vec<i64> = every.iter().flat_map(|&t| [t; 3]).collect();
    expected.sort();
    assert_eq!(times(None, None), expected, "time order, all batches");
    let window: Vec<i64> = expected
        .iter()
        .copied()
        .filter(|t| (-40..=10).contains(t))
        .collect();
    assert_eq!(times(Some(-40), Some(10)), window, "inclusive bounds");
    assert!(times(Some(100), None).is_empty());
    let mut in_b = 0;
    store
        .visit_contributor_records(b, &Address([1; 20]), None, None, &mut |_| {
            in_b += 1;
            Ok::<bool, StorageError>(true)
        })
        .unwrap();
    assert_eq!(in_b, 50, "another Datanet's entries are its own");
    // One entry per stored record version, whatever happens to the record later.
    store
        .set_status(&record("b3", 1, 3).record_id(), Status::Pending)
        .unwrap();
    store
        .tombstone(
            &record("b4", 1, 4).record_id(),
            crate::Committer::Admin(Address([8; 20])),
            99,
        )
        .unwrap();
    let entries = store.contributor_index_entries().unwrap();
    assert_eq!(entries.len(), 351);
    assert!(
        entries.contains(&(
            b,
            Address([8; 20]),
            99,
            NewRecord::new(
                format!(
                    "{{\"tombstone_of\":\"{}\"}}",
                    record("b4", 1, 4).record_id()
                ),
                None,
                Address([8; 20])
            )
            .record_id()
        ))
    );
}

#[test]
fn a_format_1_database_gets_its_contributor_index_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let store = open(dir.path());
        populated(&store);
        let entries = store.contributor_index_entries().unwrap();
        // Make it a format-1 database: no index, format 1.
        let cf = store.cf(CF_CONTRIBUTOR_RECORDS).unwrap();
        store
            .raw_db()
            .delete_range_cf(cf, [0u8; 1].as_slice(), [0xffu8; 65].as_slice())
            .unwrap();
        let meta = store.cf(CF_META).unwrap();
        store
            .raw_db()
            .put_cf(meta, META_FORMAT, u64_value(1))
            .unwrap();
        assert!(store.contributor_index_entries().unwrap().is_empty());
        entries
    };
    let store = open(dir.path());
    assert_eq!(store.contributor_index_entries().unwrap(), before);
    let format = store
        .raw_db()
        .get_cf(store.cf(CF_META).unwrap(), META_FORMAT)
        .unwrap()
        .unwrap();
    assert_eq!(format, u64_value(FORMAT_VERSION));
    let by_contributor: BTreeMap<Address, usize> =
        before.iter().fold(BTreeMap::new(), |mut counts, entry| {
            *counts.entry(entry.1).or_default() += 1;
            counts
        });
    assert_eq!(by_contributor[&Address([1; 20])], 50 + 3 * 15);
}

#[test]
fn a_scan_fills_the_block_cache_only_when_the_family_fits() {
    let dir = tempfile::tempdir().unwrap();
    let live = {
        let store = open(dir.path());
        let a = store.create_datanet(datanet("a")).unwrap().id;
        let records = (0..2000u32)
            .map(|i| record(&hex::encode(crate::keccak256(&i.to_le_bytes())), 1, 0))
            .collect();
        store.commit_records(a, records).unwrap();
        store.wait_for_compactions().unwrap();
        store.live_sst_bytes(CF_RECORDS).unwrap().unwrap() as usize
    };
    assert!(live > 100_000, "the records are in SST files: {live} bytes");
    // Twice the compressed size must fit: a cache of `live` bytes is too small, four times is not.
    for (capacity, fills) in [(live, false), (4 * live, true)] {
        let options = StoreOptions {
            sync_writes: false,
            create_if_missing: false,
            block_cache_bytes: capacity,
        };
        let store = Store::open(dir.path(), options).unwrap();
        let before = store.block_cache_usage();
        let mut seen = 0;
        store
            .visit_all_records(0, 1, &mut |_| {
                seen += 1;
                Ok::<bool, StorageError>(true)
            })
            .unwrap();
        assert_eq!(seen, 2000);
        let grown = store.block_cache_usage() - before;
        if fills {
            assert!(grown >= live / 2, "cache grew by {grown} of {live} bytes");
        } else {
            assert_eq!(grown, 0, "a scan too large for the cache filled it");
        }
    }
}
