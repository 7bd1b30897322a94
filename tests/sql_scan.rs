//! The `records` table's access paths (all records in id-range partitions, batch pages, the
//! contributor index, point lookups) answer exactly what reading the records one by one says,
//! and never show a Datanet the caller may not read.

use std::collections::BTreeSet;

use provdb::query::arrow::array::AsArray;
use provdb::{Address, Caller, Datanet, Db, IngestOptions, QueryLimits, Status, Visibility};
use serde_json::json;

use crate::common::{fresh_db, write_rows};
use crate::sql::text_of;

const OWNER: Address = Address([0x0a; 20]);

fn contributor(i: usize) -> Address {
    Address([0xa1 + (i % 5) as u8; 20])
}

/// `big` (public, 240 records), `small` (public, 12) and `hidden` (private, 30); texts with
/// quotes, backslashes, newlines and accents among plain ones.
fn build() -> (tempfile::TempDir, Db) {
    let (dir, db) = fresh_db();
    for (name, private) in [("big", false), ("small", false), ("hidden", true)] {
        let mut datanet = Datanet::new(name);
        if private {
            datanet.visibility = Visibility::Private;
            datanet.owner = Some(OWNER);
        }
        db.create_datanet(datanet).unwrap();
    }
    let texts = [
        "plain words",
        "a \"quoted\" word",
        "back\\slash",
        "line\nbreak",
        "café naïve",
        "tab\there",
    ];
    for (name, count) in [("big", 240), ("small", 12), ("hidden", 30)] {
        let rows: Vec<serde_json::Value> = (0..count)
            .map(|i| {
                json!({
                    "text": format!("{name} {i}: {}", texts[i % texts.len()]),
                    "contributor": contributor(i).to_string(),
                    "created_at": 1000 + i as i64 * 10,
                    "license": if i % 3 == 0 { "MIT" } else { "CC0-1.0" },
                })
            })
            .collect();
        let path = write_rows(dir.path(), &format!("{name}.jsonl"), &rows);
        db.ingest_file(name, &path, &IngestOptions::default())
            .unwrap();
    }
    let big = db.records("big", 1000).unwrap();
    for record in big.iter().step_by(7) {
        db.set_status(&record.record_id, Status::Rejected).unwrap();
    }
    (dir, db)
}

fn sql(db: &Db, query: &str, caller: Caller) -> String {
    text_of(&db.sql(query, caller, QueryLimits::default()).unwrap())
}

fn lines(text: &str) -> BTreeSet<String> {
    text.lines().map(str::to_string).collect()
}

#[test]
fn every_access_path_returns_what_the_records_say() {
    let (_dir, db) = build();
    let anonymous = Caller::anonymous();
    let big = db.records("big", 1000).unwrap();
    let small = db.records("small", 1000).unwrap();

    // The public Datanets hold most records: one scan of everything, the private one's records
    // filtered out by Datanet.
    let plan = sql(&db, "EXPLAIN SELECT count(*) FROM records", anonymous);
    assert!(
        plan.contains("access=all records in id order, partitions=2"),
        "{plan}"
    );
    assert_eq!(sql(&db, "SELECT count(*) FROM records", anonymous), "252\n");
    assert_eq!(
        sql(&db, "SELECT count(*) FROM records", Caller::address(OWNER)),
        "282\n"
    );
    // Every record's text, unescaped as the record says.
    let output = db
        .sql(
            "SELECT record_id, text FROM records WHERE datanet = 'big'",
            anonymous,
            QueryLimits::default(),
        )
        .unwrap();
    let mut texts = BTreeSet::new();
    for batch in &output.batches {
        let ids = batch.column(0).as_string::<i32>();
        let values = batch.column(1).as_string::<i32>();
        for row in 0..batch.num_rows() {
            texts.insert(format!("{} {}", ids.value(row), values.value(row)));
        }
    }
    let expected: BTreeSet<String> = big
        .iter()
        .map(|r| format!("{} {}", r.record_id, r.text().unwrap().unwrap()))
        .collect();
    assert_eq!(texts, expected);

    // A small share of the records: its batch pages.
    let plan = sql(
        &db,
        "EXPLAIN SELECT count(*) FROM records WHERE datanet = 'small'",
        anonymous,
    );
    assert!(plan.contains("access=batch pages"), "{plan}");
    let ids = sql(
        &db,
        "SELECT record_id FROM records WHERE datanet = 'small' AND license = 'MIT'",
        anonymous,
    );
    let expected: BTreeSet<String> = small
        .iter()
        .filter(|r| r.license == "MIT")
        .map(|r| r.record_id.to_string())
        .collect();
    assert_eq!(lines(&ids), expected);

    // A contributor (and a time range): the contributor index, other filters still applied.
    let who = contributor(2);
    let query = format!(
        "SELECT record_id FROM records WHERE contributor = '{who}' \
         AND created_at BETWEEN 1100 AND 2000 AND status = 'approved'"
    );
    let plan = sql(&db, &format!("EXPLAIN {query}"), anonymous);
    assert!(plan.contains("access=contributor index"), "{plan}");
    let expected: BTreeSet<String> = big
        .iter()
        .chain(&small)
        .filter(|r| r.contributor == who && (1100..=2000).contains(&r.created_at_ms))
        .filter(|r| db.record(&r.record_id).unwrap().unwrap().status == Status::Approved)
        .map(|r| r.record_id.to_string())
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(lines(&sql(&db, &query, anonymous)), expected);
    // The private Datanet's records by the same contributor stay hidden.
    let hidden = format!("SELECT count(*) FROM records WHERE contributor = '{who}'");
    assert_eq!(sql(&db, &hidden, anonymous), "50\n");
    assert_eq!(sql(&db, &hidden, Caller::address(OWNER)), "56\n");
    // Only the canonical spelling matches, as a string comparison would.
    let shouting = format!(
        "SELECT count(*) FROM records WHERE contributor = '0x{}'",
        hex::encode_upper(who.0)
    );
    assert_eq!(sql(&db, &shouting, anonymous), "0\n");

    // A record id: a point lookup.
    let one = &big[5];
    let query = format!(
        "SELECT contributor FROM records WHERE record_id = '{}'",
        one.record_id
    );
    assert_eq!(
        sql(&db, &query, anonymous),
        format!("{}\n", one.contributor)
    );

    // A limit stops every partition.
    assert_eq!(
        sql(
            &db,
            "SELECT count(*) FROM (SELECT * FROM records LIMIT 7)",
            anonymous
        ),
        "7\n"
    );
}
