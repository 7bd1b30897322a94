//! Search through `Db`: what may never be returned (tombstoned, superseded, rejected, pending
//! by default), filters, bad requests, and catch-up equal to a rebuild.

use std::sync::Arc;

use provdb::index::{Embed, IndexError};
use provdb::{Caller, Db, Filters, IngestOptions, SearchMode, SearchOptions, Status};
use serde_json::json;

use crate::common::*;

/// A deterministic embedder for tests: hashed bag of words in 64 dimensions, unit length.
pub(crate) struct HashEmbedder;

impl Embed for HashEmbedder {
    fn model_id(&self) -> &str {
        "test-hash/64"
    }
    fn dim(&self) -> usize {
        64
    }
    fn embed(&self, texts: &[&str]) -> provdb::index::Result<Vec<Vec<f32>>> {
        Ok(texts
            .iter()
            .map(|text| {
                let mut v = vec![0.0f32; 64];
                for word in text
                    .split(|c: char| !c.is_alphanumeric())
                    .filter(|w| !w.is_empty())
                {
                    let h = word
                        .to_lowercase()
                        .bytes()
                        .fold(0xcbf29ce484222325u64, |h, b| {
                            (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
                        });
                    v[(h % 64) as usize] += if h & (1 << 40) == 0 { 1.0 } else { -1.0 };
                }
                v[0] += 1e-3;
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                v.iter().map(|x| x / norm).collect()
            })
            .collect())
    }
}

pub(crate) fn with_embedder(db: Db) -> Db {
    db.with_embedder(Arc::new(HashEmbedder))
}

fn options(mode: SearchMode, k: usize) -> SearchOptions {
    SearchOptions {
        k,
        mode,
        ..SearchOptions::default()
    }
}

const MODES: [SearchMode; 3] = [SearchMode::Bm25, SearchMode::Vector, SearchMode::Hybrid];

fn ingest(db: &Db, dir: &std::path::Path, name: &str, rows: &[serde_json::Value]) {
    db.ingest_file("d", &write_rows(dir, name, rows), &IngestOptions::default())
        .unwrap();
}

#[test]
fn tombstoned_superseded_and_rejected_records_never_appear() {
    let (dir, db) = fresh_db();
    let db = with_embedder(db);
    datanet(&db, "d", false);
    let alice = address(&ALICE_KEY).to_string();
    let texts = [
        "supersonic wing flutter at high mach",
        "boundary layer transition on a flat plate",
        "shock wave interaction with the wing boundary layer",
        "heat transfer in hypersonic wing flow",
    ];
    let rows: Vec<_> = texts
        .iter()
        .map(|t| json!({"text": t, "contributor": alice}))
        .collect();
    ingest(&db, dir.path(), "v1.jsonl", &rows);
    let ids: Vec<_> = texts.iter().map(|t| id_of(&json!({"text": t}))).collect();
    // Everything is found before any change.
    for mode in MODES {
        let hits = db
            .search("d", "wing boundary layer", &options(mode, 10))
            .unwrap();
        assert_eq!(hits.len(), 4, "{mode:?}");
    }
    db.tombstone(&ids[0], provdb::Committer::Admin(address(&BOB_KEY)))
        .unwrap();
    let v2 = json!({"text": "boundary layer transition on a rough wing", "contributor": alice, "supersedes": ids[1].to_string()});
    ingest(&db, dir.path(), "v2.jsonl", &[v2]);
    let v2_id = id_of(&json!({"text": "boundary layer transition on a rough wing"}));
    db.set_status(&ids[2], Status::Rejected).unwrap();

    for mode in MODES {
        for query in [
            "supersonic wing flutter",
            "boundary layer transition",
            "shock wave",
            "wing",
        ] {
            let hits = db.search("d", query, &options(mode, 10)).unwrap();
            for hit in &hits {
                assert!(
                    ![ids[0], ids[1], ids[2]].contains(&hit.record_id),
                    "{mode:?} '{query}' returned removed record {}",
                    hit.record_id
                );
            }
        }
        let hits = db
            .search("d", "boundary layer transition wing", &options(mode, 10))
            .unwrap();
        let found: Vec<_> = hits.iter().map(|h| h.record_id).collect();
        assert!(found.contains(&v2_id), "{mode:?}: the new version is found");
        assert!(
            found.contains(&ids[3]),
            "{mode:?}: the untouched record is found"
        );
        assert_eq!(found.len(), 2, "{mode:?}");
    }
    // Rejected records come back only when asked for, superseded ones only with history.
    let mut rejected = options(SearchMode::Bm25, 10);
    rejected.filters.statuses = vec![Status::Rejected];
    let hits = db.search("d", "shock wave", &rejected).unwrap();
    assert_eq!(
        hits.iter().map(|h| h.record_id).collect::<Vec<_>>(),
        vec![ids[2]]
    );
    let mut history = options(SearchMode::Bm25, 10);
    history.filters.include_superseded = true;
    let hits = db.search("d", "transition flat plate", &history).unwrap();
    assert!(hits.iter().any(|h| h.record_id == ids[1]));
    assert!(
        hits.iter().all(|h| h.record_id != ids[0]),
        "a tombstoned record stays hidden"
    );
}

#[test]
fn hits_carry_provenance_text_and_per_retriever_ranks() {
    let (dir, db) = fresh_db();
    let db = with_embedder(db);
    datanet(&db, "d", false);
    let alice = address(&ALICE_KEY).to_string();
    let bob = address(&BOB_KEY).to_string();
    ingest(
        &db,
        dir.path(),
        "a.jsonl",
        &[
            json!({"text": "laminar flow over a swept wing", "contributor": alice}),
            json!({"text": "turbulent jets and their noise", "contributor": bob}),
        ],
    );
    let hits = db
        .search(
            "d",
            "swept wing laminar flow",
            &options(SearchMode::Hybrid, 5),
        )
        .unwrap();
    let top = &hits[0];
    assert_eq!(top.text, "laminar flow over a swept wing");
    assert_eq!(top.contributor, address(&ALICE_KEY));
    assert_eq!(
        top.record_id,
        id_of(&json!({"text": "laminar flow over a swept wing"}))
    );
    assert_eq!(top.bm25.map(|r| r.rank), Some(1));
    assert_eq!(top.vector.map(|r| r.rank), Some(1));
    assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
    let json = serde_json::to_value(top).unwrap();
    assert_eq!(json["contributor"], alice);
    assert!(json["record_id"].as_str().unwrap().starts_with("0x"));
}

#[test]
fn pending_records_wait_for_approval_and_licenses_filter() {
    let (dir, db) = fresh_db();
    let mut spec = provdb::Datanet::new("d");
    spec.initial_status = Status::Pending;
    db.create_datanet(spec).unwrap();
    let alice = address(&ALICE_KEY).to_string();
    ingest(
        &db,
        dir.path(),
        "a.jsonl",
        &[
            json!({"text": "pressure distribution on cones", "contributor": alice, "license": "CC0"}),
            json!({"text": "pressure waves in ducts", "contributor": alice, "license": "MIT"}),
        ],
    );
    let bm25 = options(SearchMode::Bm25, 10);
    assert!(
        db.search("d", "pressure", &bm25).unwrap().is_empty(),
        "pending is not retrievable"
    );
    let cones = id_of(&json!({"text": "pressure distribution on cones", "license": "CC0"}));
    let cones = if db.record(&cones).unwrap().is_some() {
        cones
    } else {
        id_of(&json!({"text": "pressure distribution on cones"}))
    };
    db.set_status(&cones, Status::Approved).unwrap();
    let hits = db.search("d", "pressure", &bm25).unwrap();
    assert_eq!(
        hits.iter().map(|h| h.record_id).collect::<Vec<_>>(),
        vec![cones]
    );
    let mut any = bm25.clone();
    any.filters = Filters {
        statuses: vec![Status::Approved, Status::Pending],
        licenses: vec!["MIT".into()],
        include_superseded: false,
    };
    let hits = db.search("d", "pressure", &any).unwrap();
    assert_eq!(hits.len(), 1);
    assert!(hits[0].text.contains("ducts"));
}

#[test]
fn bad_requests_are_user_errors_and_change_nothing() {
    let (dir, db) = fresh_db();
    datanet(&db, "d", false);
    let alice = address(&ALICE_KEY).to_string();
    ingest(
        &db,
        dir.path(),
        "a.jsonl",
        &[json!({"text": "nozzle flow", "contributor": alice})],
    );
    let sequence = db.store().sequence().unwrap();
    let cases = [
        ("nope", options(SearchMode::Bm25, 10)),
        ("d", options(SearchMode::Bm25, 0)),
        ("d", options(SearchMode::Bm25, provdb::search::MAX_K + 1)),
        ("d", options(SearchMode::Vector, 10)),
        (
            "d",
            SearchOptions {
                rrf_k: 0.0,
                ..options(SearchMode::Bm25, 10)
            },
        ),
    ];
    for (name, request) in cases {
        let error = db.search(name, "nozzle", &request).unwrap_err();
        assert!(error.is_user_error(), "{name} {request:?}: {error}");
    }
    assert!(matches!(
        "fuzzy".parse::<SearchMode>(),
        Err(IndexError::Invalid(message)) if message.contains("bm25, vector, hybrid")
    ));
    assert_eq!(db.store().sequence().unwrap(), sequence);
    assert_eq!(record_count(&db, "d"), 1);
    assert_eq!(
        db.search("d", "nozzle", &options(SearchMode::Bm25, 10))
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn a_reopened_index_catches_up_and_equals_a_rebuild() {
    let (dir, db) = fresh_db();
    let db = with_embedder(db);
    datanet(&db, "d", false);
    let alice = address(&ALICE_KEY).to_string();
    let rows: Vec<_> = (0..300)
        .map(|i| json!({"text": format!("record {i} about wing {} and flow {}", i % 7, i % 11), "contributor": alice}))
        .collect();
    ingest(&db, dir.path(), "a.jsonl", &rows[..150]);
    let queries = ["wing 3 flow 5", "record 42", "flow 10"];
    for q in queries {
        db.search("d", q, &options(SearchMode::Hybrid, 10)).unwrap();
    }
    let data = db.dir().to_path_buf();
    drop(db);
    // More records while no index is open: the next open catches up from the log.
    let db = with_embedder(Db::open(&data).unwrap());
    ingest(&db, dir.path(), "b.jsonl", &rows[150..]);
    db.tombstone(
        &id_of(&json!({"text": "record 42 about wing 0 and flow 9"})),
        provdb::Committer::Admin(address(&BOB_KEY)),
    )
    .unwrap();
    let caught: Vec<_> = queries
        .iter()
        .flat_map(|q| MODES.map(|m| db.search("d", q, &options(m, 10)).unwrap()))
        .collect();
    let rebuilt_report = db.rebuild_index("d", &|_, _, _| {}).unwrap();
    assert_eq!(rebuilt_report.chunks, 300);
    let rebuilt: Vec<_> = queries
        .iter()
        .flat_map(|q| MODES.map(|m| db.search("d", q, &options(m, 10)).unwrap()))
        .collect();
    assert_eq!(caught.len(), rebuilt.len());
    for (a, b) in caught.iter().zip(&rebuilt) {
        let ids = |hits: &[provdb::SearchHit]| hits.iter().map(|h| h.chunk_id).collect::<Vec<_>>();
        assert_eq!(ids(a), ids(b));
        for (x, y) in a.iter().zip(b) {
            assert!(
                (x.score - y.score).abs() < 1e-5,
                "{} vs {}",
                x.score,
                y.score
            );
        }
    }
    assert!(
        caught[3].iter().all(|h| !h.text.starts_with("record 42 ")),
        "tombstone applied"
    );
}

#[test]
fn index_parameters_are_per_datanet_and_checked() {
    let (dir, db) = fresh_db();
    let db = with_embedder(db);
    datanet(&db, "d", false);
    let alice = address(&ALICE_KEY).to_string();
    let rows: Vec<_> = (0..200)
        .map(|i| json!({"text": format!("note {i} on cone {} and jet {}", i % 13, i % 17), "contributor": alice}))
        .collect();
    ingest(&db, dir.path(), "a.jsonl", &rows);
    let exact = db
        .search("d", "cone 4 jet 9", &options(SearchMode::Vector, 5))
        .unwrap();
    let config = provdb::index::IndexConfig {
        hnsw: provdb::index::HnswParams {
            m: 8,
            ef_construction: 64,
            ef_search: 200,
        },
        // Always walk the graph, even for a handful of chunks.
        exact_scan_max: 0,
        fusion_depth: 50,
    };
    db.configure_index("d", &config).unwrap();
    assert_eq!(db.index("d").unwrap().config(), config);
    let graph = db
        .search("d", "cone 4 jet 9", &options(SearchMode::Vector, 5))
        .unwrap();
    // Compared by score: texts with equal vectors may tie, and a tie at the k-th place may be
    // broken either way.
    let scores = |hits: &[provdb::SearchHit]| {
        hits.iter()
            .map(|h| (h.score * 1e5).round() as i64)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        scores(&graph),
        scores(&exact),
        "ef_search 200 over 200 vectors is exhaustive"
    );

    let bad = provdb::index::IndexConfig {
        hnsw: provdb::index::HnswParams {
            m: 1,
            ..config.hnsw
        },
        ..config
    };
    let error = db.configure_index("d", &bad).unwrap_err();
    assert!(
        error.is_user_error() && error.to_string().contains("m 1"),
        "{error}"
    );
    assert_eq!(
        db.index("d").unwrap().config(),
        config,
        "the bad config was not stored"
    );
    assert!(
        db.configure_index("nope", &config)
            .unwrap_err()
            .is_user_error()
    );
}

#[test]
fn a_private_datanet_is_searched_only_by_its_owner_and_grantees() {
    let (dir, db) = fresh_db();
    let owner = address(&ALICE_KEY);
    let reader = address(&BOB_KEY);
    let mut spec = provdb::Datanet::new("d");
    spec.visibility = provdb::Visibility::Private;
    spec.owner = Some(owner);
    db.create_datanet(spec).unwrap();
    ingest(
        &db,
        dir.path(),
        "a.jsonl",
        &[json!({"text": "secret wind tunnel data", "contributor": owner.to_string()})],
    );
    let bm25 = options(SearchMode::Bm25, 5);
    for who in [Caller::anonymous(), Caller::address(reader)] {
        let error = db.search_as("d", "wind tunnel", &bm25, who).unwrap_err();
        assert!(
            error.is_user_error() && error.to_string().contains("private"),
            "{error}"
        );
    }
    assert_eq!(
        db.search_as("d", "wind tunnel", &bm25, Caller::address(owner))
            .unwrap()
            .len(),
        1
    );
    let id = db.datanet_info("d").unwrap().id;
    db.store()
        .grant(&provdb::storage::Grant {
            datanet_id: id,
            grantee: reader,
            granted_by: Some(owner),
            granted_at_ms: 0,
        })
        .unwrap();
    assert_eq!(
        db.search_as("d", "wind tunnel", &bm25, Caller::address(reader))
            .unwrap()
            .len(),
        1
    );
    db.store().revoke(id, &reader).unwrap();
    assert!(
        db.search_as("d", "wind tunnel", &bm25, Caller::address(reader))
            .is_err(),
        "revoked"
    );
}

#[test]
fn datanets_have_separate_indexes() {
    let (dir, db) = fresh_db();
    let db = with_embedder(db);
    datanet(&db, "d", false);
    datanet(&db, "e", false);
    let alice = address(&ALICE_KEY).to_string();
    ingest(
        &db,
        dir.path(),
        "a.jsonl",
        &[json!({"text": "delta wing vortex", "contributor": alice})],
    );
    db.ingest_file(
        "e",
        &write_rows(
            dir.path(),
            "b.jsonl",
            &[json!({"text": "delta wing vortex lift", "contributor": alice})],
        ),
        &IngestOptions::default(),
    )
    .unwrap();
    for mode in MODES {
        let d = db
            .search("d", "delta wing vortex", &options(mode, 10))
            .unwrap();
        let e = db
            .search("e", "delta wing vortex", &options(mode, 10))
            .unwrap();
        assert_eq!(
            d.iter().map(|h| h.text.as_str()).collect::<Vec<_>>(),
            vec!["delta wing vortex"]
        );
        assert_eq!(
            e.iter().map(|h| h.text.as_str()).collect::<Vec<_>>(),
            vec!["delta wing vortex lift"]
        );
    }
    assert!(
        db.dir()
            .join("index")
            .join("d")
            .join("catalog.bin")
            .is_file()
    );
    assert!(
        db.dir()
            .join("index")
            .join("e")
            .join("vectors.bin")
            .is_file()
    );
}
