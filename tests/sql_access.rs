//! Access rules as a property: for a caller without a grant, every query over a database
//! holding a private Datanet answers exactly as it does over the same database without it:
//! the same rows, the same counts, the same error messages. Queries are generated over every
//! table and search function, with filters, joins, subqueries and aggregates.

use proptest::prelude::*;
use provdb::{Caller, Db, QueryLimits};

use crate::common::{ALICE_KEY, address};
use crate::sql::{fixture_with, text_of};

/// A row source and the columns to show of it (none that depend on when the fixture ran).
const SOURCES: [(&str, &str); 9] = [
    (
        "records",
        "record_id, datanet, contributor, license, status, content",
    ),
    ("chunks", "chunk_id, record_id, datanet_id, text"),
    ("datanets", "datanet_id, name, visibility, records, chunks"),
    ("grants", "*"),
    ("secret", "*"),
    (
        "bm25_search('secret', 'secret wing', 5)",
        "chunk_id, record_id, rank",
    ),
    (
        "hybrid_search('secret', 'design', 5)",
        "chunk_id, record_id, rank",
    ),
    (
        "bm25_search('papers', 'flow heat', 5)",
        "chunk_id, record_id, rank",
    ),
    (
        "chunks c JOIN records r USING (record_id)",
        "c.text, r.datanet, r.contributor",
    ),
];

const FILTERS: [&str; 7] = [
    "",
    " WHERE datanet_id = 3",
    " WHERE datanet = 'secret'",
    " WHERE contributor = '{alice}'",
    " WHERE text LIKE '%secret%'",
    " WHERE record_id IN (SELECT record_id FROM records WHERE datanet_id > 2)",
    " WHERE EXISTS (SELECT 1 FROM chunks WHERE text LIKE '%wing%')",
];

fn query(source: usize, filter: usize, shape: usize) -> String {
    let (from, columns) = SOURCES[source];
    let filter = FILTERS[filter].replace("{alice}", &address(&ALICE_KEY).to_string());
    match shape {
        0 => format!("SELECT {columns} FROM {from}{filter} ORDER BY 1, 2"),
        1 => format!("SELECT count(*) FROM {from}{filter}"),
        2 => format!("SELECT count(*) FROM (SELECT * FROM {from}{filter}) sub"),
        _ => format!("EXPLAIN SELECT count(*) FROM {from}{filter}"),
    }
}

fn answer(db: &Db, sql: &str, caller: Caller) -> String {
    match db.sql(sql, caller, QueryLimits::default()) {
        Ok(output) => text_of(&output),
        Err(error) => format!("error: {error}"),
    }
}

#[test]
fn no_query_tells_a_stranger_anything_about_a_private_datanet() {
    let dir = tempfile::tempdir().unwrap();
    let with = fixture_with(&dir.path().join("with"), true);
    let without = fixture_with(&dir.path().join("without"), false);
    let carol = Caller::address(address(&[0x33; 32]));
    let bob = Caller::address(address(&crate::common::BOB_KEY));
    // The property can fail: the grantee's answers do differ.
    let probe = query(1, 0, 1);
    assert_ne!(answer(&with, &probe, bob), answer(&without, &probe, bob));
    let config = ProptestConfig {
        cases: 96,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(source in 0..SOURCES.len(), filter in 0..FILTERS.len(), shape in 0..4usize, anonymous: bool)| {
        let caller = if anonymous { Caller::anonymous() } else { carol };
        let sql = query(source, filter, shape);
        let seen = answer(&with, &sql, caller);
        let expected = answer(&without, &sql, caller);
        prop_assert_eq!(seen, expected, "{}", sql);
    });
}
