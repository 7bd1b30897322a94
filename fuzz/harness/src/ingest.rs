//! Targets over the ingest path: a file written with the format's extension and ingested into
//! a typed or an untyped Datanet of one database per process.
//!
//! Invariant: an ingest succeeds, or fails with a user error (bad input, not an internal or IO
//! error) and stores nothing: the Datanet's counters are unchanged. A success stores exactly
//! what its report says, and stays within [`LIMITS`]: an input that decodes to more (a
//! compressed Parquet page of one repeated string, a dictionary value on every row, a CSV of
//! many tiny rows) is refused as too large, with nothing stored.

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock, PoisonError};

use provdb::storage::{ColumnKind, ColumnSpec, DatanetStats};
use provdb::{Address, Datanet, Db, Error, IngestOptions, IngestReport};

/// The untyped Datanet (any JSON object with a `text` column).
const LOOSE: &str = "loose";
/// The Datanet with a typed schema.
const TYPED: &str = "typed";

/// The limits every target ingests under, tight so that the seeds' bombs cross them while
/// staying small files: (bytes per row, decoded bytes per file, rows per file).
pub const LIMITS: (usize, u64, u64) = (1 << 20, 16 << 20, 10_000);

struct Fixture {
    db: Db,
    dir: PathBuf,
    /// Ingests one at a time: the replay tests run targets on parallel threads, and the
    /// counters are compared before and after.
    lock: Mutex<()>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let_parquet_panics_unwind();
        let dir = tempfile::Builder::new()
            .prefix("provdb-fuzz-ingest-")
            .tempdir()
            .expect("temporary directory")
            .keep();
        let db = Db::init(dir.join("data")).expect("database");
        db.create_datanet(Datanet::new(LOOSE))
            .expect("loose datanet");
        let column = |name: &str, kind, required| ColumnSpec {
            name: name.into(),
            kind,
            required,
        };
        let mut typed = Datanet::new(TYPED);
        typed.schema = Some(vec![
            column("text", ColumnKind::String, true),
            column("title", ColumnKind::String, false),
            column("year", ColumnKind::Int, false),
            column("score", ColumnKind::Float, false),
            column("peer_reviewed", ColumnKind::Bool, false),
        ]);
        db.create_datanet(typed).expect("typed datanet");
        Fixture {
            db,
            dir,
            lock: Mutex::new(()),
        }
    })
}

/// provdb catches the panics of the parquet and arrow crates on corrupt data and reports an
/// input error (`parquet_call` in `src/ingest/source.rs`); libFuzzer's panic hook aborts at the
/// panic, before that catch can run. So a panic raised under `parquet_call` (its frame is on the
/// stack) goes on unwinding to provdb's catch; every other panic goes to the hook installed
/// before (libFuzzer's, or the default one in the replay tests). The fuzz and test profiles
/// keep line tables, so inlined frames are named too.
fn let_parquet_panics_unwind() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let caught = std::backtrace::Backtrace::force_capture()
            .to_string()
            .contains("parquet_call");
        if caught {
            eprintln!("parquet panicked (provdb should catch it): {info}");
        } else {
            previous(info);
        }
    }));
}

/// A JSONL file. First byte: bit 0 picks the typed Datanet, bit 1 `skip_invalid`.
pub fn ingest_jsonl(data: &[u8]) {
    ingest(data, "jsonl");
}

/// A CSV file. First byte: bit 0 picks the typed Datanet, bit 1 `skip_invalid`.
pub fn ingest_csv(data: &[u8]) {
    ingest(data, "csv");
}

/// A Parquet file. First byte: bit 0 picks the typed Datanet, bit 1 `skip_invalid`.
pub fn ingest_parquet(data: &[u8]) {
    ingest(data, "parquet");
}

fn ingest(data: &[u8], extension: &str) {
    // The invariants are checked inside; the outcome is for tests that expect a refusal.
    let _ = ingest_outcome(data, extension);
}

/// Ingests `data` (flags byte first) as a file with `extension`, checks the invariants and
/// returns the outcome (`None` for an input without a flags byte).
pub fn ingest_outcome(data: &[u8], extension: &str) -> Option<Result<IngestReport, Error>> {
    let (&flags, content) = data.split_first()?;
    let fixture = fixture();
    let _one_at_a_time = fixture.lock.lock().unwrap_or_else(PoisonError::into_inner);
    let name = if flags & 1 == 1 { TYPED } else { LOOSE };
    let path = fixture.dir.join(format!("input.{extension}"));
    std::fs::write(&path, content).expect("write the input");
    let (max_record_bytes, max_decoded_bytes, max_rows) = LIMITS;
    let options = IngestOptions {
        contributor: Some(Address([0x11; 20])),
        skip_invalid: flags & 2 == 2,
        rejects_path: Some(fixture.dir.join("rejects.jsonl")),
        max_record_bytes,
        max_decoded_bytes,
        max_rows,
        ..IngestOptions::default()
    };
    let before = stats(&fixture.db, name);
    let outcome = fixture.db.ingest_file(name, &path, &options);
    let after = stats(&fixture.db, name);
    match &outcome {
        Ok(report) => {
            assert_eq!(
                after.records - before.records,
                report.accepted as u64,
                "records stored against {report:?}"
            );
            assert_eq!(after.chunks - before.chunks, report.chunks as u64);
            assert_eq!(
                after.content_bytes - before.content_bytes,
                report.content_bytes
            );
            assert_eq!(report.sequence.is_some(), report.accepted > 0);
            if report.accepted == 0 {
                assert_eq!(before, after, "nothing accepted but the counters moved");
            }
            if !options.skip_invalid {
                assert_eq!(report.rejected, 0, "rows rejected without skip_invalid");
            }
            let rows = (report.accepted + report.rejected) as u64;
            assert!(rows <= max_rows, "{rows} rows ingested past the limit");
        }
        Err(e) => {
            assert!(e.is_user_error(), "bad input gave a non-user error: {e}");
            assert_eq!(before, after, "a failed ingest stored something: {e}");
        }
    }
    Some(outcome)
}

fn stats(db: &Db, name: &str) -> DatanetStats {
    db.datanet_info(name).expect("datanet").stats
}
