//! Access rules as properties, over queries generated on every table (the audit tables too)
//! and search function, with filters, joins, subqueries and aggregates:
//!
//! 1. For a caller without a grant, every query over a database holding a private Datanet
//!    answers exactly as it does over the same database without it: the same rows, the same
//!    counts, the same error messages.
//! 2. Wherever the private Datanet is created, and wherever the answers over it fall among the
//!    others (before or after an epoch closes), a stranger cannot tell two different private
//!    Datanets apart: `secret` (alice's, two records, a grant to bob, bob's questions) and
//!    `vault` (dave's, one record of two chunks, a grant to erin, dave's questions). The two
//!    take the same sequence numbers, Datanet id, chunk ids and ledger entries, and pay the
//!    same accounts the same amounts: those counters, the hashes that chain over them, and the
//!    epochs' per-account totals are the leaks `docs/GUARANTEES.md` names; nothing else of a
//!    private Datanet may show, in any table including `attributions`, `citations`, `epochs`,
//!    `balances` and every `sequence` column.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;

use proptest::prelude::*;
use provdb::storage::{
    AnswerId, AnswerRecord, ChunkingConfig, CitationRecord, CreditSource, Grant, NewAnswer,
    NewEntry, Record, Role, keccak256,
};
use provdb::{Address, Caller, Datanet, Db, QueryLimits, Visibility};
use serde_json::json;

use crate::common::{ALICE_KEY, BOB_KEY, address};
use crate::sql::{
    CAROL_KEY, add_notes, add_papers, add_secret, fixture_with, ingest_rows, text_of,
};

/// A row source and the columns to show of it (none that depend on when the fixture ran).
const SOURCES: [(&str, &str); 15] = [
    (
        "records",
        "record_id, datanet, contributor, license, status, content, sequence, version",
    ),
    ("chunks", "chunk_id, record_id, datanet_id, text"),
    (
        "datanets",
        "datanet_id, name, visibility, records, chunks, last_sequence",
    ),
    ("grants", "*"),
    ("secret", "*"),
    ("vault", "*"),
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
        "c.text, r.datanet, r.contributor, r.sequence",
    ),
    (
        "attributions",
        "seq, answer_id, ts, caller, datanet_id, datanet, record_id, chunk_id, contributor, \
         role, weight_ppm, amount_wei, model, adapter",
    ),
    (
        "citations",
        "answer_id, marker, ts, caller, question, model, attribution, chunk_id, record_id, \
         datanet_id, datanet, contributor, retrieval_score, weight_ppm",
    ),
    (
        "epochs",
        "epoch, first_seq, end_seq, root, accounts, total_wei",
    ),
    ("balances", "*"),
    (
        "attributions a JOIN citations c USING (answer_id)",
        "a.seq, c.marker, c.question, c.datanet, a.role",
    ),
];

const FILTERS: [&str; 10] = [
    "",
    " WHERE datanet_id = 3",
    " WHERE datanet = 'secret'",
    " WHERE contributor = '{alice}'",
    " WHERE text LIKE '%secret%'",
    " WHERE record_id IN (SELECT record_id FROM records WHERE datanet_id > 2)",
    " WHERE EXISTS (SELECT 1 FROM chunks WHERE text LIKE '%wing%')",
    " WHERE question IS NOT NULL",
    " WHERE caller = '{bob}'",
    " WHERE sequence > 3",
];

fn query(source: usize, filter: usize, shape: usize) -> String {
    let (from, columns) = SOURCES[source];
    let filter = FILTERS[filter]
        .replace("{alice}", &address(&ALICE_KEY).to_string())
        .replace("{bob}", &address(&BOB_KEY).to_string());
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

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 96,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn carol() -> Caller {
    Caller::address(address(&CAROL_KEY))
}

#[test]
fn no_query_tells_a_stranger_anything_about_a_private_datanet() {
    let dir = tempfile::tempdir().unwrap();
    let with = fixture_with(&dir.path().join("with"), true);
    let without = fixture_with(&dir.path().join("without"), false);
    let bob = Caller::address(address(&BOB_KEY));
    // The property can fail: the grantee's answers do differ.
    let probe = query(1, 0, 1);
    assert_ne!(answer(&with, &probe, bob), answer(&without, &probe, bob));
    proptest!(config(), |(source in 0..SOURCES.len(), filter in 0..FILTERS.len(), shape in 0..4usize, anonymous: bool)| {
        let caller = if anonymous { Caller::anonymous() } else { carol() };
        let sql = query(source, filter, shape);
        let seen = answer(&with, &sql, caller);
        let expected = answer(&without, &sql, caller);
        prop_assert_eq!(seen, expected, "{}", sql);
    });
}

/// Which private Datanet a world holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum World {
    Secret,
    Vault,
}

const DAVE_KEY: [u8; 32] = [0x44; 32];
const ERIN_KEY: [u8; 32] = [0x55; 32];
const MODEL_OWNER: Address = Address([0xbb; 20]);
const PROTOCOL: Address = Address([0xcc; 20]);

/// `vault`: private, owned by dave, one record of alice's in two chunks, a grant to erin.
fn add_vault(db: &Db, dir: &Path) {
    let (alice, dave) = (address(&ALICE_KEY), address(&DAVE_KEY));
    let mut vault = Datanet::new("vault");
    vault.license = "MIT".into();
    vault.visibility = Visibility::Private;
    vault.owner = Some(dave);
    let chunking = ChunkingConfig {
        size_bytes: 24,
        overlap_bytes: 0,
    };
    vault.chunking = chunking;
    let vault = db.create_datanet(vault).unwrap();
    let text = "the vault combination is 4711 and 0815";
    assert_eq!(
        provdb::ingest::chunk_text(text, chunking).len(),
        2,
        "the vault's record takes the two chunk ids of secret's two records"
    );
    ingest_rows(
        db,
        dir,
        "vault",
        "vault.jsonl",
        vec![json!({"text": text, "contributor": alice.to_string()})],
    );
    db.store()
        .grant(&Grant {
            datanet_id: vault.id,
            grantee: address(&ERIN_KEY),
            granted_by: Some(dave),
            granted_at_ms: 0,
        })
        .unwrap();
}

fn records(db: &Db, datanet: &str) -> Vec<Record> {
    let mut records = db.records(datanet, 10).unwrap();
    records.sort_by_key(|r| r.first_chunk_id);
    records
}

fn cite(record: &Record, marker: u32) -> CitationRecord {
    CitationRecord {
        marker,
        chunk_id: record.first_chunk_id,
        record_id: record.record_id,
        datanet_id: record.datanet_id,
        contributor: record.contributor,
        retrieval_score: 0.5,
        weight_ppm: 500_000,
    }
}

fn pay(to: Address, role: Role, amount_wei: u128, source: Option<&Record>) -> NewEntry {
    NewEntry {
        datanet_id: source.map(|r| r.datanet_id),
        record_id: source
            .filter(|_| role == Role::Contributor)
            .map(|r| r.record_id),
        chunk_id: source
            .filter(|_| role == Role::Contributor)
            .map(|r| r.first_chunk_id),
        to,
        role,
        weight_ppm: 0,
        amount_wei,
    }
}

/// One answer, written straight into the ledger (the pipeline's own tests check how answers
/// are made; this fixture needs their rows, at fixed times).
struct Asked<'a> {
    seed: String,
    caller: Address,
    question: &'a str,
    datanet_ids: Vec<u32>,
    adapter: Option<&'a str>,
    citations: Vec<CitationRecord>,
    entries: Vec<NewEntry>,
}

fn append(db: &Db, asked: Asked<'_>) {
    let mut entries = asked.entries;
    entries.push(pay(MODEL_OWNER, Role::ModelOwner, 300, None));
    entries.push(pay(PROTOCOL, Role::Protocol, 100, None));
    let record = AnswerRecord {
        answer_id: AnswerId(keccak256(asked.seed.as_bytes())),
        ts_ms: 1_700_000_000_000,
        caller: Some(asked.caller),
        datanet_ids: asked.datanet_ids,
        question: asked.question.into(),
        text: "an answer [1]".into(),
        model: "smollm2".into(),
        adapter: asked.adapter.map(Into::into),
        fee_wei: entries.iter().map(|e| e.amount_wei).sum(),
        attribution: "cited".into(),
        training_attribution: None,
        citations: asked.citations,
        first_seq: 0,
        entries: 0,
    };
    db.store()
        .append_answers(vec![NewAnswer { record, entries }])
        .unwrap();
}

/// The public answers, step by step: carol asks over `papers`, an epoch closes, bob asks over
/// `notes`.
fn public_answer(db: &Db, step: usize) {
    let papers = records(db, "papers");
    let notes = records(db, "notes");
    match step {
        0 => append(
            db,
            Asked {
                seed: "public/carol".into(),
                caller: address(&CAROL_KEY),
                question: "what is boundary layer transition?",
                datanet_ids: vec![papers[0].datanet_id],
                adapter: None,
                citations: vec![cite(&papers[0], 1)],
                entries: vec![pay(
                    papers[0].contributor,
                    Role::Contributor,
                    600,
                    Some(&papers[0]),
                )],
            },
        ),
        1 => {
            db.store().close_epoch(1_700_000_100_000).unwrap();
        }
        _ => append(
            db,
            Asked {
                seed: "public/bob".into(),
                caller: address(&BOB_KEY),
                question: "what gives lift?",
                datanet_ids: vec![notes[0].datanet_id],
                adapter: None,
                citations: vec![cite(&notes[0], 1)],
                entries: vec![pay(
                    notes[0].contributor,
                    Role::Contributor,
                    600,
                    Some(&notes[0]),
                )],
            },
        ),
    }
}

/// The answers that touched the private Datanet: over it alone, over it and `papers`, with an
/// adapter trained on it (recorded the old way, named only by a training contributor's entry,
/// and the new way, in the answer's Datanets). The same payments in both worlds.
fn private_answers(db: &Db, world: World) {
    let (name, asker, question) = match world {
        World::Secret => (
            "secret",
            address(&BOB_KEY),
            "what is the secret wing design?",
        ),
        World::Vault => (
            "vault",
            address(&DAVE_KEY),
            "where is the vault's combination?",
        ),
    };
    let private = records(db, name);
    let shock = &records(db, "papers")[1];
    let (p, papers_id) = (&private[0], shock.datanet_id);
    let seed = |n: u32| format!("{name}/{n}");
    let alice = address(&ALICE_KEY);
    let answers = [
        Asked {
            seed: seed(1),
            caller: asker,
            question,
            datanet_ids: vec![p.datanet_id],
            adapter: None,
            citations: vec![cite(p, 1)],
            entries: vec![pay(alice, Role::Contributor, 600, Some(p))],
        },
        Asked {
            seed: seed(2),
            caller: asker,
            question,
            datanet_ids: vec![papers_id, p.datanet_id],
            adapter: None,
            citations: vec![cite(shock, 1), cite(p, 2)],
            entries: vec![
                pay(shock.contributor, Role::Contributor, 300, Some(shock)),
                pay(alice, Role::Contributor, 300, Some(p)),
            ],
        },
        Asked {
            seed: seed(3),
            caller: asker,
            question,
            datanet_ids: vec![papers_id],
            adapter: Some("0xadad"),
            citations: vec![cite(shock, 1)],
            entries: vec![
                pay(shock.contributor, Role::Contributor, 500, Some(shock)),
                pay(alice, Role::TrainingContributor, 100, Some(p)),
            ],
        },
        Asked {
            seed: seed(4),
            caller: asker,
            question,
            datanet_ids: vec![papers_id, p.datanet_id],
            adapter: Some("0xadad"),
            citations: vec![cite(shock, 1)],
            entries: vec![pay(shock.contributor, Role::Contributor, 600, Some(shock))],
        },
    ];
    for asked in answers {
        append(db, asked);
    }
}

/// The fixture of `world` with the private Datanet created at `datanet_at` (0: first, 2:
/// after both public ones) and its answers at `answers_at` among the public ones (0: first,
/// 3: last; the epoch closes between the first and second public answers).
fn build(dir: &Path, world: World, datanet_at: usize, answers_at: usize) -> Db {
    let db = crate::search::with_embedder(Db::init(dir.join("data")).unwrap());
    // Every asker of either world is funded alike in both, so the credits tell nothing apart.
    for key in [&CAROL_KEY, &BOB_KEY, &DAVE_KEY] {
        let source = CreditSource::Admin {
            by: None,
            reason: "test funds".into(),
        };
        db.store()
            .credit(address(key), 1 << 64, source, 1_700_000_000_000)
            .unwrap();
    }
    let public: [fn(&Db, &Path); 2] = [add_papers, add_notes];
    for step in 0..=public.len() {
        if step == datanet_at {
            match world {
                World::Secret => add_secret(&db, dir),
                World::Vault => add_vault(&db, dir),
            }
        }
        if let Some(add) = public.get(step) {
            add(&db, dir);
        }
    }
    for step in 0..=3 {
        if step == answers_at {
            private_answers(&db, world);
        }
        if step < 3 {
            public_answer(&db, step);
        }
    }
    db
}

/// Fixtures built on first use, by world and positions.
struct Worlds {
    dir: tempfile::TempDir,
    built: RefCell<HashMap<(World, usize, usize), Db>>,
}

impl Worlds {
    fn get(&self, world: World, datanet_at: usize, answers_at: usize) -> Db {
        let key = (world, datanet_at, answers_at);
        let mut built = self.built.borrow_mut();
        built
            .entry(key)
            .or_insert_with(|| {
                let dir = self
                    .dir
                    .path()
                    .join(format!("{world:?}-{datanet_at}-{answers_at}"));
                std::fs::create_dir_all(&dir).unwrap();
                build(&dir, world, datanet_at, answers_at)
            })
            .clone()
    }
}

#[test]
fn wherever_a_private_datanet_falls_a_stranger_cannot_tell_which_one_it_is() {
    let worlds = Worlds {
        dir: tempfile::tempdir().unwrap(),
        built: RefCell::new(HashMap::new()),
    };
    // The property can fail: the grantee, the owner and the asker do see a difference.
    let (secret, vault) = (
        worlds.get(World::Secret, 1, 1),
        worlds.get(World::Vault, 1, 1),
    );
    let bob = Caller::address(address(&BOB_KEY));
    let alice = Caller::address(address(&ALICE_KEY));
    for (caller, sql) in [
        (bob, "SELECT count(*) FROM records"),
        (bob, "SELECT count(*) FROM attributions"),
        (
            alice,
            "SELECT question FROM citations WHERE question LIKE '%secret%'",
        ),
    ] {
        assert_ne!(
            answer(&secret, sql, caller),
            answer(&vault, sql, caller),
            "{sql}"
        );
    }
    // The owner sees the questions over her Datanet; a stranger sees only its own.
    let questions = |caller| {
        answer(
            &secret,
            "SELECT DISTINCT question FROM citations WHERE question IS NOT NULL ORDER BY 1",
            caller,
        )
    };
    assert!(
        questions(alice).contains("secret wing"),
        "{}",
        questions(alice)
    );
    assert_eq!(
        questions(carol()).trim(),
        "what is boundary layer transition?"
    );
    assert_eq!(questions(Caller::anonymous()).trim(), "");
    proptest!(config(), |(
        source in 0..SOURCES.len(), filter in 0..FILTERS.len(), shape in 0..4usize,
        anonymous: bool, datanet_at in 0..3usize, answers_at in 0..4usize,
    )| {
        let caller = if anonymous { Caller::anonymous() } else { carol() };
        let sql = query(source, filter, shape);
        let seen = answer(&worlds.get(World::Secret, datanet_at, answers_at), &sql, caller);
        let other = answer(&worlds.get(World::Vault, datanet_at, answers_at), &sql, caller);
        prop_assert_eq!(seen, other, "{} (datanet at {}, answers at {})", sql, datanet_at, answers_at);
    });
}
