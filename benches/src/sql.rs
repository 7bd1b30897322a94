//! `provdb bench sql`: SQL over a Datanet of `--records` synthetic records (`sql_data`),
//! ingested through `Db::ingest_files` (files of `--file-records` rows, no search index), then
//! exported from `SELECT ... FROM records` to Parquet; two queries are timed, best of
//! `--reps` after a warm-up, on provdb (`Db::sql`) and on DuckDB over the Parquet file in the
//! same run (`scripts/bench-duckdb.sh`, PyPI `duckdb`, pinned, limited to 2 threads like
//! provdb's session). Both engines' rows are compared (row count and a checksum of the sorted,
//! canonically printed rows), so the ratio compares the same answer.
//!
//! `--dir DIR` keeps the database and the Parquet file there and reuses them on the next run
//! with the same `--records` (to iterate on the query path without re-ingesting);
//! DuckDB is part of the measurement: when it cannot run, the benchmark fails (before anything
//! is built or timed) with an error naming `scripts/bench-duckdb.sh`, unless the caller opts
//! out with `--no-baseline` (or `PROVDB_BENCH_NO_BASELINE=1`) to time provdb alone.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use arrow_array::{Array, RecordBatch};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use provdb::storage::StoreOptions;
use provdb::{Caller, Datanet, Db, IngestOptions, QueryLimits, QueryOutput};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::output::{UserError, print_json};
use crate::sql_data::{self, SPAN_MS, START_MS};

/// The options of `provdb-bench sql`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Records in the Datanet.
    #[arg(long, default_value_t = 1_000_000)]
    pub(crate) records: usize,
    /// Rows per ingested JSONL file (one batch each).
    #[arg(long, default_value_t = 100_000)]
    pub(crate) file_records: usize,
    /// Timed repetitions of each query after a warm-up (the best is reported).
    #[arg(long, default_value_t = 3)]
    pub(crate) reps: usize,
    /// Keep the database and Parquet file here and reuse them when built with the same
    /// --records (default: a temporary directory).
    #[arg(long)]
    pub(crate) dir: Option<PathBuf>,
    /// Do not run DuckDB (also PROVDB_BENCH_NO_BASELINE=1): provdb alone, no ratio. Without
    /// it, a DuckDB that cannot run is an error.
    #[arg(long, alias = "no-duckdb")]
    pub(crate) no_baseline: bool,
    /// Another query to time on both engines (repeatable), over the table `records`.
    #[arg(long = "query")]
    pub(crate) extra_queries: Vec<String>,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

const DATANET: &str = "bench";
/// The DuckDB anchor, run from the repository root.
const DUCKDB_SCRIPT: &str = "scripts/bench-duckdb.sh";
/// DuckDB's threads: the same as provdb's SQL runtime and DataFusion partitions.
const THREADS: usize = 2;
/// Rows per Parquet row group: DuckDB's own default, so it can split the scan across threads.
const ROW_GROUP_ROWS: usize = 122_880;
/// The contributor of the selective query (by rank: about 0.7 % of all records).
const FILTER_RANK: usize = 19;
const MONTH_MS: i64 = 30 * 86_400_000;
/// What `--dir` keeps next to the database: what it was built with, and its ingest figures.
const MARKER: &str = "bench-sql.json";
/// Bumped when the generated data changes, so a kept directory is rebuilt.
const DATA_VERSION: u32 = 2;

/// A kept database: what it holds and what building it measured.
#[derive(Clone, Serialize, Deserialize)]
struct Built {
    data_version: u32,
    records: usize,
    files: usize,
    input_bytes: u64,
    ingest_s: f64,
    statuses_changed: usize,
    parquet_bytes: u64,
    export_s: f64,
}

#[derive(Serialize)]
struct QueryReport {
    name: String,
    sql: String,
    provdb_s: f64,
    /// The warm-up run's wall time: the first query of the process, which reads blocks from
    /// disk (or the OS cache) and fills the block cache.
    provdb_first_s: f64,
    /// CPU time over all threads (stabler than wall time on a loaded machine).
    provdb_cpu_s: Option<f64>,
    rows: usize,
    checksum: String,
    duckdb_s: Option<f64>,
    duckdb_cpu_s: Option<f64>,
    duckdb_rows: Option<usize>,
    duckdb_checksum: Option<String>,
    /// provdb's time over DuckDB's.
    ratio: Option<f64>,
    results_match: Option<bool>,
}

#[derive(Serialize)]
struct Report {
    records: usize,
    files: usize,
    input_mb: f64,
    ingest_s: f64,
    ingest_records_per_s: f64,
    reused_database: bool,
    statuses_changed: usize,
    parquet_mb: f64,
    export_s: f64,
    reps: usize,
    duckdb: Option<String>,
    queries: Vec<QueryReport>,
    target_ratio: f64,
    target_met: Option<bool>,
}

/// The benchmark's queries, then `extra` ones: (name, SQL).
fn queries(extra: &[String]) -> Vec<(String, String)> {
    let from = START_MS + SPAN_MS / 2;
    let fixed = [
        (
            "group_by_contributor",
            "SELECT contributor, count(*) AS records, avg(length(text)) AS avg_text_chars \
             FROM records GROUP BY contributor"
                .to_string(),
        ),
        (
            // A contributor's dashboard: their records of one month.
            "contributor_month",
            format!(
                "SELECT record_id, created_at FROM records WHERE contributor = '{}' \
                 AND created_at BETWEEN {from} AND {}",
                sql_data::contributor(FILTER_RANK),
                from + MONTH_MS
            ),
        ),
    ];
    let extra = extra
        .iter()
        .enumerate()
        .map(|(i, sql)| (format!("query_{}", i + 1), sql.clone()));
    fixed
        .into_iter()
        .map(|(name, sql)| (name.to_string(), sql))
        .chain(extra)
        .collect()
}

fn limits() -> QueryLimits {
    QueryLimits {
        timeout: Duration::from_secs(3600),
        memory_bytes: 4 << 30,
        max_rows: None,
        max_result_bytes: 4 << 30,
    }
}

/// Generates, ingests (timed), sets statuses and exports to Parquet (timed) in `dir`.
fn build(dir: &Path, args: &Args) -> anyhow::Result<Built> {
    eprintln!("generating {} records ...", args.records);
    let (files, input_bytes) =
        sql_data::write_jsonl(&dir.join("input"), args.records, args.file_records)?;
    let db_dir = dir.join("db");
    let ingest_s = {
        let db = Db::init(&db_dir)?;
        db.create_datanet(Datanet::new(DATANET))?;
        eprintln!("ingesting {} files ...", files.len());
        let started = Instant::now();
        db.ingest_files(
            DATANET,
            &files,
            &IngestOptions::default(),
            &|_, _| {},
            &mut |_| {},
        )?;
        started.elapsed().as_secs_f64()
    };
    for file in &files {
        fs_err::remove_file(file)?;
    }
    // Status changes are one commit each: without fsync, so that setup stays short.
    let db = open_unsynced(&db_dir)?;
    eprintln!("setting statuses ...");
    let statuses_changed = sql_data::set_statuses(&db, DATANET)?;
    eprintln!("exporting to Parquet ...");
    let started = Instant::now();
    let parquet_bytes = export_parquet(&db, &dir.join("records.parquet"))?;
    let export_s = started.elapsed().as_secs_f64();
    Ok(Built {
        data_version: DATA_VERSION,
        records: args.records,
        files: files.len(),
        input_bytes,
        ingest_s,
        statuses_changed,
        parquet_bytes,
        export_s,
    })
}

fn open_unsynced(dir: &Path) -> anyhow::Result<Db> {
    Ok(Db::open_with(
        dir,
        StoreOptions {
            sync_writes: false,
            create_if_missing: false,
            ..StoreOptions::default()
        },
    )?)
}

/// Writes the columns the queries read (and a few more) to `path`; returns its size.
fn export_parquet(db: &Db, path: &Path) -> anyhow::Result<u64> {
    let output = db.sql(
        // In time order, as such a file would be kept: DuckDB then skips row groups by their
        // created_at statistics (provdb returns rows in no particular order).
        "SELECT record_id, datanet, contributor, license, status, created_at, text FROM records \
         ORDER BY created_at, record_id",
        Caller::anonymous(),
        limits(),
    )?;
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build();
    let file = fs_err::File::create(path)?;
    let mut writer = ArrowWriter::try_new(file, Arc::clone(&output.schema), Some(properties))?;
    for batch in &output.batches {
        writer.write(batch)?;
    }
    writer.close()?;
    Ok(fs_err::metadata(path)?.len())
}

/// A result cell, as both engines' rows are compared.
enum Cell {
    Null,
    Text(String),
    Int(i128),
    Float(f64),
}

impl Cell {
    fn print(&self) -> String {
        match self {
            Self::Null => "NULL".into(),
            Self::Text(s) => s.clone(),
            Self::Int(i) => i.to_string(),
            // Both engines average exact integer sums, so 6 decimals compare safely.
            Self::Float(f) => format!("{f:.6}"),
        }
    }
}

fn cell(array: &dyn Array, row: usize) -> anyhow::Result<Cell> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::*;
    use arrow_schema::DataType;
    if array.is_null(row) {
        return Ok(Cell::Null);
    }
    Ok(match array.data_type() {
        DataType::Utf8 => Cell::Text(array.as_string::<i32>().value(row).to_string()),
        DataType::LargeUtf8 => Cell::Text(array.as_string::<i64>().value(row).to_string()),
        DataType::Utf8View => Cell::Text(array.as_string_view().value(row).to_string()),
        DataType::Int64 => Cell::Int(array.as_primitive::<Int64Type>().value(row).into()),
        DataType::Int32 => Cell::Int(array.as_primitive::<Int32Type>().value(row).into()),
        DataType::UInt64 => Cell::Int(array.as_primitive::<UInt64Type>().value(row).into()),
        DataType::UInt32 => Cell::Int(array.as_primitive::<UInt32Type>().value(row).into()),
        DataType::Float64 => Cell::Float(array.as_primitive::<Float64Type>().value(row)),
        other => anyhow::bail!("bench sql: no comparison for result type {other}"),
    })
}

/// provdb's rows, printed canonically.
fn provdb_rows(batches: &[RecordBatch]) -> anyhow::Result<Vec<String>> {
    let mut rows = Vec::new();
    for batch in batches {
        for row in 0..batch.num_rows() {
            let cells: Vec<String> = batch
                .columns()
                .iter()
                .map(|c| cell(c.as_ref(), row).map(|c| c.print()))
                .collect::<anyhow::Result<_>>()?;
            rows.push(cells.join("\t"));
        }
    }
    Ok(rows)
}

/// DuckDB's rows (JSON arrays), printed canonically.
fn duckdb_rows(rows: &Value) -> anyhow::Result<Vec<String>> {
    let rows = rows
        .as_array()
        .ok_or_else(|| anyhow::anyhow!("DuckDB rows are not an array"))?;
    rows.iter()
        .map(|row| {
            let cells = row
                .as_array()
                .ok_or_else(|| anyhow::anyhow!("a DuckDB row is not an array"))?;
            let printed: Vec<String> = cells
                .iter()
                .map(|v| match v {
                    Value::Null => Cell::Null,
                    Value::String(s) => Cell::Text(s.clone()),
                    Value::Number(n) => match n.as_i64() {
                        Some(i) => Cell::Int(i.into()),
                        None => Cell::Float(n.as_f64().unwrap_or(f64::NAN)),
                    },
                    other => Cell::Text(other.to_string()),
                })
                .map(|c| c.print())
                .collect();
            Ok(printed.join("\t"))
        })
        .collect()
}

/// Row count and checksum (keccak256 of the sorted rows, first 8 bytes in hex).
fn checksum(mut rows: Vec<String>) -> (usize, String) {
    rows.sort_unstable();
    let hash = provdb::storage::keccak256(rows.join("\n").as_bytes());
    (rows.len(), hex::encode(&hash[..8]))
}

/// A query's timings on provdb.
struct Timed {
    first_s: f64,
    best_s: f64,
    best_cpu_s: Option<f64>,
}

/// The warm-up's wall time, the best wall and CPU times of `reps` runs after it, and the last
/// run's output.
fn time_provdb(db: &Db, sql: &str, reps: usize) -> anyhow::Result<(Timed, QueryOutput)> {
    let started = Instant::now();
    let mut output = db.sql(sql, Caller::anonymous(), limits())?;
    let first_s = started.elapsed().as_secs_f64();
    let (mut best, mut best_cpu) = (f64::MAX, None::<f64>);
    for _ in 0..reps.max(1) {
        let (started, started_cpu) = (Instant::now(), crate::process::cpu_seconds());
        output = db.sql(sql, Caller::anonymous(), limits())?;
        best = best.min(started.elapsed().as_secs_f64());
        if let (Some(before), Some(after)) = (started_cpu, crate::process::cpu_seconds()) {
            best_cpu = Some(best_cpu.map_or(after - before, |b| b.min(after - before)));
        }
    }
    let timed = Timed {
        first_s,
        best_s: best,
        best_cpu_s: best_cpu,
    };
    Ok((timed, output))
}

/// Makes sure DuckDB runs before anything is built or timed: `scripts/bench-duckdb.sh
/// --install-only` (installs its venv the first time, does nothing after). A user error
/// naming the script and the opt-out when it cannot.
fn install_duckdb() -> anyhow::Result<()> {
    let script = Path::new(DUCKDB_SCRIPT);
    let why = if !script.exists() {
        "is not here: run from the repository root".to_string()
    } else {
        match Command::new("bash")
            .arg(script)
            .arg("--install-only")
            .output()
        {
            Ok(output) if output.status.success() => return Ok(()),
            Ok(output) => format!("failed: {}", String::from_utf8_lossy(&output.stderr).trim()),
            Err(e) => format!("cannot be run: {e}"),
        }
    };
    Err(UserError(format!(
        "DuckDB, the baseline of this benchmark, cannot run: {DUCKDB_SCRIPT} (which installs \
         PyPI duckdb into a venv under ~/.cache/provdb) {why}. Pass --no-baseline (or set \
         PROVDB_BENCH_NO_BASELINE=1) to time provdb alone, without a ratio."
    ))
    .into())
}

/// DuckDB's JSON report over the Parquet file.
fn duckdb(parquet: &Path, reps: usize, queries: &[(String, String)]) -> anyhow::Result<Value> {
    let script = Path::new(DUCKDB_SCRIPT);
    let mut command = Command::new("bash");
    command.arg(script).arg("--parquet").arg(parquet).args([
        "--threads",
        &THREADS.to_string(),
        "--reps",
        &reps.to_string(),
    ]);
    for (name, sql) in queries {
        command.arg("--query").arg(name).arg(sql);
    }
    let output = command
        .output()
        .with_context(|| format!("cannot run {DUCKDB_SCRIPT}"))?;
    anyhow::ensure!(
        output.status.success(),
        "{DUCKDB_SCRIPT} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout)
        .with_context(|| format!("bad DuckDB output from {DUCKDB_SCRIPT}"))
}

/// The kept database in `dir`, if it was built with the same records and data.
fn kept(dir: &Path, records: usize) -> Option<Built> {
    let bytes = fs_err::read(dir.join(MARKER)).ok()?;
    let built: Built = serde_json::from_slice(&bytes).ok()?;
    let complete = dir.join("records.parquet").exists() && dir.join("db").exists();
    (complete && built.records == records && built.data_version == DATA_VERSION).then_some(built)
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    if args.records == 0 || args.file_records == 0 || args.reps == 0 {
        return Err(
            UserError("--records, --file-records and --reps must be positive".into()).into(),
        );
    }
    let with_duckdb = !(args.no_baseline
        || std::env::var("PROVDB_BENCH_NO_BASELINE").is_ok_and(|v| !v.is_empty() && v != "0"));
    if with_duckdb {
        install_duckdb()?;
    }
    let temp;
    let dir: PathBuf = match &args.dir {
        Some(dir) => {
            fs_err::create_dir_all(dir)?;
            dir.clone()
        }
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let (built, reused) = match kept(&dir, args.records) {
        Some(built) => (built, true),
        None => {
            for stale in ["db", "input"] {
                if dir.join(stale).exists() {
                    fs_err::remove_dir_all(dir.join(stale))?;
                }
            }
            let built = build(&dir, &args)?;
            fs_err::write(dir.join(MARKER), serde_json::to_vec_pretty(&built)?)?;
            (built, false)
        }
    };
    let db = open_unsynced(&dir.join("db"))?;
    // A loaded database's compactions finish first (the Parquet file, too, is complete before
    // DuckDB is timed), whether they are left from the load or start on opening.
    eprintln!("waiting for compactions ...");
    db.store().wait_for_compactions()?;
    let queries = queries(&args.extra_queries);
    let mut measured = Vec::new();
    for (name, sql) in &queries {
        eprintln!("provdb: {name} ...");
        let (timed, output) = time_provdb(&db, sql, args.reps)?;
        measured.push((timed, checksum(provdb_rows(&output.batches)?)));
    }
    let anchor = if with_duckdb {
        eprintln!("DuckDB ...");
        Some(duckdb(&dir.join("records.parquet"), args.reps, &queries)?)
    } else {
        eprintln!("DuckDB not measured (--no-baseline or PROVDB_BENCH_NO_BASELINE)");
        None
    };
    let mut reports = Vec::new();
    for ((name, sql), (timed, (rows, sum))) in queries.iter().zip(measured) {
        let provdb_s = timed.best_s;
        let theirs = anchor.as_ref().map(|a| &a["queries"][name.as_str()]);
        let duckdb_s = theirs.and_then(|t| t["best_s"].as_f64());
        let duckdb_check = match theirs {
            Some(t) => Some(checksum(duckdb_rows(&t["rows"])?)),
            None => None,
        };
        reports.push(QueryReport {
            name: name.clone(),
            sql: sql.clone(),
            provdb_s,
            provdb_first_s: timed.first_s,
            provdb_cpu_s: timed.best_cpu_s,
            duckdb_cpu_s: theirs.and_then(|t| t["best_cpu_s"].as_f64()),
            results_match: duckdb_check.as_ref().map(|(r, s)| *r == rows && *s == sum),
            rows,
            checksum: sum,
            duckdb_s,
            duckdb_rows: duckdb_check.as_ref().map(|c| c.0),
            duckdb_checksum: duckdb_check.map(|c| c.1),
            ratio: duckdb_s.map(|d| provdb_s / d),
        });
    }
    let target_ratio = 2.0;
    let target_met = reports
        .iter()
        .map(|r| r.ratio.map(|ratio| ratio <= target_ratio))
        .collect::<Option<Vec<bool>>>()
        .map(|all| all.into_iter().all(|ok| ok));
    let mismatch = reports.iter().any(|r| r.results_match == Some(false));
    let report = Report {
        records: built.records,
        files: built.files,
        input_mb: built.input_bytes as f64 / 1e6,
        ingest_s: built.ingest_s,
        ingest_records_per_s: built.records as f64 / built.ingest_s,
        reused_database: reused,
        statuses_changed: built.statuses_changed,
        parquet_mb: built.parquet_bytes as f64 / 1e6,
        export_s: built.export_s,
        reps: args.reps,
        duckdb: anchor
            .as_ref()
            .and_then(|a| a["duckdb"].as_str().map(str::to_string)),
        queries: reports,
        target_ratio,
        target_met,
    };
    if args.json {
        print_json(&report)?;
    } else {
        print_text(&report);
    }
    if mismatch {
        anyhow::bail!("provdb and DuckDB returned different rows (see the checksums)");
    }
    Ok(())
}

fn print_text(report: &Report) {
    println!(
        "SQL over {} records ({:.0} MB of JSONL in {} files{}), best of {}",
        report.records,
        report.input_mb,
        report.files,
        if report.reused_database {
            ", database kept from an earlier run"
        } else {
            ""
        },
        report.reps
    );
    println!(
        "  ingest {:.1} s ({:.0} records/s); {} statuses changed; Parquet {:.0} MB, exported in {:.1} s",
        report.ingest_s,
        report.ingest_records_per_s,
        report.statuses_changed,
        report.parquet_mb,
        report.export_s
    );
    let cpu = |s: Option<f64>| s.map_or("?".to_string(), |s| format!("{:.0}", s * 1e3));
    for q in &report.queries {
        print!(
            "  {:<22} provdb {:>7.1} ms (CPU {:>5} ms; first run {:.1} ms), {} rows",
            q.name,
            q.provdb_s * 1e3,
            cpu(q.provdb_cpu_s),
            q.provdb_first_s * 1e3,
            q.rows
        );
        match (q.duckdb_s, q.ratio, q.results_match) {
            (Some(d), Some(r), Some(same)) => println!(
                "; DuckDB {:>7.1} ms (CPU {:>5} ms); provdb / DuckDB = {r:.2} (target <= {}); results {}",
                d * 1e3,
                cpu(q.duckdb_cpu_s),
                report.target_ratio,
                if same { "match" } else { "DIFFER" }
            ),
            _ => println!(),
        }
    }
    if let Some(version) = &report.duckdb {
        println!(
            "  DuckDB {version}, {THREADS} threads, over Parquet (Snappy, row groups of {ROW_GROUP_ROWS})"
        );
    }
}
