//! SQL behaviour as sqllogictest files (`tests/sql/*.slt`), run against a fixture database:
//! `papers` (public, MIT, typed columns title/year/text, records by alice and bob, one
//! updated and one rejected), `notes` (public, CC-BY-4.0, no schema, by carol) and `secret`
//! (private, owned by alice, read grant to bob), built in steps the access property test
//! (`sql_access.rs`) also runs in other orders. Two harness statements: `SET provdb.caller =
//! 'alice'|'bob'|'carol'|'anonymous'` switches the caller, and `{alice}`, `{bob}`, `{carol}`
//! in a query stand for their addresses.

use std::path::Path;

use provdb::query::arrow::util::display::{ArrayFormatter, FormatOptions};
use provdb::storage::{ColumnKind, ColumnSpec, Grant};
use provdb::{Address, Caller, Datanet, Db, IngestOptions, QueryLimits, Status, Visibility};
use serde_json::json;
use sqllogictest::{DBOutput, DefaultColumnType};

use crate::common::{ALICE_KEY, BOB_KEY, address, fresh_db, write_rows};

pub(crate) const CAROL_KEY: [u8; 32] = [0x33; 32];

fn people() -> [(&'static str, Address); 3] {
    [
        ("alice", address(&ALICE_KEY)),
        ("bob", address(&BOB_KEY)),
        ("carol", address(&CAROL_KEY)),
    ]
}

/// Builds the fixture database in `dir`.
pub(crate) fn fixture(dir: &Path) -> Db {
    fixture_with(dir, true)
}

/// The fixture, with or without the private Datanet `secret` (and its grant).
pub(crate) fn fixture_with(dir: &Path, with_secret: bool) -> Db {
    let db = crate::search::with_embedder(Db::init(dir.join("data")).unwrap());
    add_papers(&db, dir);
    add_notes(&db, dir);
    if with_secret {
        add_secret(&db, dir);
    }
    db
}

/// Ingests `rows` from `file` into Datanet `name`.
pub(crate) fn ingest_rows(
    db: &Db,
    dir: &Path,
    name: &str,
    file: &str,
    rows: Vec<serde_json::Value>,
) {
    let path = write_rows(dir, file, &rows);
    db.ingest_file(name, &path, &IngestOptions::default())
        .unwrap();
}

/// `papers`: public, MIT, typed; records by alice and bob, one rejected by its curator.
pub(crate) fn add_papers(db: &Db, dir: &Path) {
    let [(_, alice), (_, bob), _] = people();
    let mut papers = Datanet::new("papers");
    papers.license = "MIT".into();
    papers.schema = Some(vec![
        ColumnSpec {
            name: "title".into(),
            kind: ColumnKind::String,
            required: true,
        },
        ColumnSpec {
            name: "year".into(),
            kind: ColumnKind::Int,
            required: false,
        },
        ColumnSpec {
            name: "text".into(),
            kind: ColumnKind::String,
            required: true,
        },
    ]);
    db.create_datanet(papers).unwrap();
    ingest_rows(
        db,
        dir,
        "papers",
        "papers.jsonl",
        vec![
            json!({"title": "Boundary layer transition", "year": 1958, "text": "boundary layer transition on a flat plate", "contributor": alice.to_string()}),
            json!({"title": "Shock waves", "year": 1960, "text": "oblique shock waves in supersonic flow", "contributor": bob.to_string()}),
            json!({"title": "Heat transfer", "year": 1962, "text": "heat transfer at hypersonic speeds", "contributor": bob.to_string()}),
            json!({"title": "Rejected draft", "year": 1990, "text": "a draft the curator rejected", "contributor": alice.to_string()}),
        ],
    );
    let records = db.records("papers", 10).unwrap();
    let rejected = records
        .iter()
        .find(|r| r.content.contains("Rejected"))
        .unwrap();
    db.set_status(&rejected.record_id, Status::Rejected)
        .unwrap();
}

/// `notes`: public, CC-BY-4.0, no schema, by carol.
pub(crate) fn add_notes(db: &Db, dir: &Path) {
    let [_, _, (_, carol)] = people();
    let mut notes = Datanet::new("notes");
    notes.license = "CC-BY-4.0".into();
    db.create_datanet(notes).unwrap();
    ingest_rows(
        db,
        dir,
        "notes",
        "notes.jsonl",
        vec![
            json!({"text": "a note on lift", "contributor": carol.to_string()}),
            json!({"text": "a note on drag", "contributor": carol.to_string()}),
        ],
    );
}

/// `secret`: private, owned by alice, two records of hers, a read grant to bob.
pub(crate) fn add_secret(db: &Db, dir: &Path) {
    let [(_, alice), (_, bob), _] = people();
    let mut secret = Datanet::new("secret");
    secret.license = "MIT".into();
    secret.visibility = Visibility::Private;
    secret.owner = Some(alice);
    let secret = db.create_datanet(secret).unwrap();
    ingest_rows(
        db,
        dir,
        "secret",
        "secret.jsonl",
        vec![
            json!({"text": "secret wing design", "contributor": alice.to_string()}),
            json!({"text": "secret engine design", "contributor": alice.to_string()}),
        ],
    );
    db.store()
        .grant(&Grant {
            datanet_id: secret.id,
            grantee: bob,
            granted_by: Some(alice),
            granted_at_ms: 0,
        })
        .unwrap();
}

/// The database as sqllogictest sees it.
struct Connection {
    db: Db,
    caller: Caller,
}

impl sqllogictest::DB for Connection {
    type Error = provdb::Error;
    type ColumnType = DefaultColumnType;

    fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, provdb::Error> {
        let trimmed = sql.trim().trim_end_matches(';');
        if let Some(who) = trimmed.strip_prefix("SET provdb.caller = ") {
            let who = who.trim_matches('\'');
            self.caller = match people().iter().find(|(name, _)| *name == who) {
                Some((_, address)) => Caller::address(*address),
                None => Caller::anonymous(),
            };
            return Ok(DBOutput::StatementComplete(0));
        }
        let mut sql = sql.to_string();
        for (name, address) in people() {
            sql = sql.replace(&format!("{{{name}}}"), &address.to_string());
        }
        let output = self.db.sql(&sql, self.caller, QueryLimits::default())?;
        let options = FormatOptions::default().with_null("NULL");
        let mut rows = Vec::new();
        for batch in &output.batches {
            let formatters: Vec<ArrayFormatter<'_>> = batch
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap())
                .collect();
            for row in 0..batch.num_rows() {
                rows.push(
                    formatters
                        .iter()
                        .map(|f| f.value(row).to_string())
                        .collect(),
                );
            }
        }
        let types = vec![DefaultColumnType::Any; output.schema.fields().len()];
        Ok(DBOutput::Rows { types, rows })
    }
}

#[test]
fn sqllogictest_files_pass() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture(dir.path());
    // At run time: a path baked in at compile time could be another clone's (the target
    // directory is shared).
    let files = Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("tests/sql");
    let mut paths: Vec<_> = std::fs::read_dir(files)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "slt"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty());
    for path in paths {
        let db = db.clone();
        let mut runner = sqllogictest::Runner::new(move || {
            let db = db.clone();
            async move {
                Ok(Connection {
                    db,
                    caller: Caller::anonymous(),
                })
            }
        });
        runner
            .run_file(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

pub(crate) fn text_of(output: &provdb::QueryOutput) -> String {
    let options = FormatOptions::default();
    let mut text = String::new();
    for batch in &output.batches {
        for column in batch.columns() {
            let formatter = ArrayFormatter::try_new(column.as_ref(), &options).unwrap();
            for row in 0..batch.num_rows() {
                text.push_str(&formatter.value(row).to_string());
                text.push('\n');
            }
        }
    }
    text
}

#[test]
fn explain_shows_what_the_scan_applies() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture(dir.path());
    let carol = address(&CAROL_KEY);
    let sql = format!(
        "EXPLAIN SELECT record_id FROM records WHERE datanet = 'notes' AND contributor = '{carol}' AND length(content) > 3 LIMIT 1"
    );
    let plan = text_of(
        &db.sql(&sql, Caller::anonymous(), QueryLimits::default())
            .unwrap(),
    );
    assert!(plan.contains("ProvdbScan: table=records"), "{plan}");
    assert!(
        plan.contains(&format!("contributor IN ({carol})")),
        "{plan}"
    );
    assert!(plan.contains("datanet IN (notes)"), "{plan}");
    // `length(content) > 3` is not pushable: DataFusion filters above the scan, so no limit
    // reaches it.
    assert!(plan.contains("limit=none"), "{plan}");
    let sql = "EXPLAIN SELECT record_id FROM records WHERE status = 'approved' LIMIT 2";
    let plan = text_of(
        &db.sql(sql, Caller::anonymous(), QueryLimits::default())
            .unwrap(),
    );
    assert!(
        plan.contains("status IN (approved)") && plan.contains("limit=2"),
        "{plan}"
    );
}

#[test]
fn bad_sql_is_a_user_error_that_says_where() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture(dir.path());
    let run = |sql: &str| {
        db.sql(sql, Caller::anonymous(), QueryLimits::default())
            .unwrap_err()
    };
    let error = run("SELEC * FROM records");
    assert!(
        error.is_user_error() && error.to_string().contains("Line: 1, Column: 1"),
        "{error}"
    );
    let error = run("SELECT * FROM records WHERE");
    assert!(error.to_string().contains("ends too early"), "{error}");
    let error = run("SELECT * FROM recordz");
    assert!(
        error.is_user_error() && error.to_string().contains("did you mean 'records'?"),
        "{error}"
    );
    // The nearest name is one the caller may read: no private Datanet is ever suggested.
    let error = run("SELECT * FROM secrets");
    assert!(!error.to_string().contains("did you mean"), "{error}");
    let error = run("SELECT * FROM hybrid_serch('papers', 'x', 3)");
    assert!(error.to_string().contains("hybrid_search"), "{error}");
    let error = run("SELECT contributr FROM records");
    assert!(
        error.is_user_error() && error.to_string().contains("contributor"),
        "{error}"
    );
    let limits = QueryLimits {
        max_rows: Some(2),
        ..QueryLimits::default()
    };
    let output = db
        .sql("SELECT * FROM chunks", Caller::anonymous(), limits)
        .unwrap();
    assert!(output.truncated && output.rows() == 2);
}

#[test]
fn search_results_join_with_chunks_and_records() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture(dir.path());
    let sql = "SELECT r.record_id, r.contributor, c.text, s.score \
               FROM hybrid_search('papers', 'boundary layer transition', 10) s \
               JOIN chunks c USING (chunk_id) JOIN records r USING (record_id) \
               WHERE r.license = 'MIT' ORDER BY s.score DESC";
    let output = db
        .sql(sql, Caller::anonymous(), QueryLimits::default())
        .unwrap();
    let names: Vec<&str> = output
        .schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    assert_eq!(names, ["record_id", "contributor", "text", "score"]);
    // Three approved papers; the one about boundary layers first, by alice.
    assert_eq!(output.rows(), 3);
    let text = text_of(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[3], address(&ALICE_KEY).to_string());
    assert_eq!(lines[6], "boundary layer transition on a flat plate");
    let plan = text_of(
        &db.sql(
            &format!("EXPLAIN {sql}"),
            Caller::anonymous(),
            QueryLimits::default(),
        )
        .unwrap(),
    );
    assert!(plan.contains("hybrid_search('papers', k=10)"), "{plan}");
}

#[test]
fn over_a_limit_a_query_fails_clearly_and_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture(dir.path());
    let before = text_of(
        &db.sql(
            "SELECT count(*) FROM records",
            Caller::anonymous(),
            QueryLimits::default(),
        )
        .unwrap(),
    );
    // Eight chunks to the eighth power: far more than 50 ms of work.
    let endless = "SELECT count(*) FROM chunks a, chunks b, chunks c, chunks d, chunks e, \
                   chunks f, chunks g, chunks h WHERE a.text || b.text || c.text || d.text || \
                   e.text || f.text || g.text || h.text LIKE '%zzz%'";
    let limits = QueryLimits {
        timeout: std::time::Duration::from_millis(50),
        ..QueryLimits::default()
    };
    let error = db.sql(endless, Caller::anonymous(), limits).unwrap_err();
    assert!(
        error.is_user_error() && error.to_string().contains("timed out after"),
        "{error}"
    );
    let limits = QueryLimits {
        memory_bytes: 4096,
        ..QueryLimits::default()
    };
    let error = db
        .sql(
            "SELECT a.content, b.content FROM records a, records b ORDER BY 1, 2",
            Caller::anonymous(),
            limits,
        )
        .unwrap_err();
    assert!(
        error.is_user_error() && error.to_string().contains("memory limit"),
        "{error}"
    );
    let after = text_of(
        &db.sql(
            "SELECT count(*) FROM records",
            Caller::anonymous(),
            QueryLimits::default(),
        )
        .unwrap(),
    );
    assert_eq!(before, after);
}

#[test]
fn unused_fresh_db_is_empty() {
    let (_dir, db) = fresh_db();
    let out = db
        .sql(
            "SELECT count(*) AS n FROM records",
            Caller::anonymous(),
            QueryLimits::default(),
        )
        .unwrap();
    assert_eq!(out.rows(), 1);
}
