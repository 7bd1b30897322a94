//! `provdb bench ingest`: records/s and MB/s ingesting a replicated Cranfield (JSONL files of
//! `--batch` records, one all-or-nothing batch each), without and with signature checks, and
//! the raw RocksDB `WriteBatch` rate for the same input bytes (the same batch boundaries, the
//! same fsync per batch, lines held in memory so that only the write is timed). Raw and
//! unsigned runs alternate `--runs` times, each into an empty database; medians are reported,
//! since on a small shared machine one run's time moves by a third.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use provdb::smart::SmartDoc;
use provdb::{Datanet, Db, IngestOptions};
use serde::Serialize;

use crate::output::{UserError, print_json};

/// The options of `provdb-bench ingest`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Records to ingest (Cranfield replicated with variations).
    #[arg(long, default_value_t = 100_000)]
    pub(crate) records: usize,
    /// Records per file (one batch each).
    #[arg(long, default_value_t = 10_000)]
    pub(crate) batch: usize,
    /// The collection to replicate.
    #[arg(long, default_value = "data/cranfield")]
    pub(crate) collection: PathBuf,
    /// Times raw RocksDB and unsigned ingest are run, alternately (medians are reported).
    #[arg(long, default_value_t = 3)]
    pub(crate) runs: usize,
    /// Skip the signed ingest (for profiling the unsigned path).
    #[arg(long)]
    pub(crate) unsigned_only: bool,
    /// Work in DIR (absent or empty) instead of a temporary directory, and keep the last
    /// run's databases there (their paths are in the report) to inspect what was written.
    #[arg(long)]
    pub(crate) dir: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Serialize)]
struct Rate {
    seconds: f64,
    /// CPU time of the process (all threads, RocksDB's included) over the same span; absent
    /// where /proc is not available.
    cpu_seconds: Option<f64>,
    records_per_s: f64,
    mb_per_s: f64,
}

impl Rate {
    fn new(time: Timed, records: usize, bytes: u64) -> Self {
        Self {
            seconds: time.seconds,
            cpu_seconds: time.cpu_seconds,
            records_per_s: records as f64 / time.seconds,
            mb_per_s: bytes as f64 / 1e6 / time.seconds,
        }
    }
}

/// Wall and CPU time of one run.
#[derive(Clone, Copy)]
struct Timed {
    seconds: f64,
    cpu_seconds: Option<f64>,
}

/// Starts timing a run.
fn start() -> (Instant, Option<f64>) {
    (Instant::now(), crate::process::cpu_seconds())
}

/// The time since `start`.
fn since((started, cpu): (Instant, Option<f64>)) -> Timed {
    let seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = cpu.zip(crate::process::cpu_seconds()).map(|(a, b)| b - a);
    Timed {
        seconds,
        cpu_seconds,
    }
}

#[derive(Serialize)]
struct Report {
    records: usize,
    files: usize,
    input_bytes: u64,
    runs: usize,
    unsigned: Rate,
    /// Absent with `--unsigned-only`.
    signed: Option<Rate>,
    raw_rocksdb: Rate,
    /// Median raw time over median unsigned time.
    unsigned_vs_raw: f64,
    /// Raw time over unsigned time of each run, in run order.
    unsigned_vs_raw_per_run: Vec<f64>,
    /// Wall time of each raw RocksDB run, in run order.
    raw_rocksdb_seconds_per_run: Vec<f64>,
    /// Wall time of each unsigned provdb run, in run order.
    unsigned_seconds_per_run: Vec<f64>,
    signed_vs_raw: Option<f64>,
    target_unsigned_vs_raw: f64,
    /// With `--dir`: where the last run's databases are.
    kept: Option<Kept>,
}

/// The databases of the last run, kept with `--dir`.
#[derive(Serialize)]
struct Kept {
    /// The raw RocksDB database: one key per input line.
    raw_rocksdb: PathBuf,
    /// The provdb database of the unsigned ingest (Datanet `bench`).
    unsigned: PathBuf,
    /// The provdb database of the signed ingest (absent with `--unsigned-only`).
    signed: Option<PathBuf>,
}

/// Writes `count` replicated documents as JSONL files of `per_file` lines; returns the paths
/// and the total bytes.
fn write_inputs(
    docs: &[SmartDoc],
    count: usize,
    per_file: usize,
    dir: &Path,
    signed: bool,
) -> anyhow::Result<(Vec<PathBuf>, u64)> {
    fs_err::create_dir_all(dir)?;
    let mut paths = Vec::new();
    let mut bytes = 0u64;
    let mut out: Option<std::io::BufWriter<fs_err::File>> = None;
    for i in 0..count {
        if i % per_file == 0 {
            if let Some(file) = out.take() {
                finish_input(file)?;
            }
            let path = dir.join(format!("part-{:04}.jsonl", i / per_file));
            out = Some(std::io::BufWriter::new(fs_err::File::create(&path)?));
            paths.push(path);
        }
        let source = &docs[i % docs.len()];
        let copy = i / docs.len();
        let mut doc = source.clone();
        doc.id = (copy * 100_000) as u32 + source.id;
        if copy > 0 {
            doc.title = format!("{} (variant {copy})", doc.title);
        }
        let mut row = provdb::demo::signed_row(&doc, "bench")?;
        if !signed {
            row.remove("signature");
        }
        let line = serde_json::to_string(&row)?;
        bytes += line.len() as u64 + 1;
        if let Some(file) = out.as_mut() {
            file.write_all(line.as_bytes())?;
            file.write_all(b"\n")?;
        }
    }
    if let Some(file) = out {
        finish_input(file)?;
    }
    Ok((paths, bytes))
}

/// Flushes and syncs an input file, so that writing it back to disk does not compete with the
/// timed runs' own syncs.
fn finish_input(file: std::io::BufWriter<fs_err::File>) -> anyhow::Result<()> {
    let file = file.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(())
}

fn ingest_all(dir: &Path, files: &[PathBuf], signed: bool) -> anyhow::Result<(Timed, usize)> {
    let db = Db::init(dir)?;
    let mut spec = Datanet::new("bench");
    spec.require_signatures = signed;
    db.create_datanet(spec)?;
    let started = start();
    let reports = db.ingest_files(
        "bench",
        files,
        &IngestOptions::default(),
        &|_, _| {},
        &mut |_| {},
    )?;
    let time = since(started);
    let records = reports.iter().map(|r| r.accepted).sum();
    Ok((time, records))
}

fn raw_rocksdb(dir: &Path, files: &[PathBuf]) -> anyhow::Result<Timed> {
    let batches: Vec<Vec<Vec<u8>>> = files
        .iter()
        .map(|f| {
            Ok(fs_err::read(f)?
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .map(<[u8]>::to_vec)
                .collect())
        })
        .collect::<anyhow::Result<_>>()?;
    let mut options = rocksdb::Options::default();
    options.create_if_missing(true);
    options.set_compression_type(rocksdb::DBCompressionType::Lz4);
    let db = rocksdb::DB::open(&options, dir)?;
    let mut write_options = rocksdb::WriteOptions::default();
    write_options.set_sync(true);
    let started = start();
    let mut key = 0u64;
    for lines in &batches {
        let mut batch = rocksdb::WriteBatch::default();
        for line in lines {
            batch.put(key.to_be_bytes(), line);
            key += 1;
        }
        db.write_opt(batch, &write_options)?;
    }
    Ok(since(started))
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    if args.records == 0 || args.batch == 0 || args.runs == 0 {
        return Err(UserError("--records, --batch and --runs must be positive".into()).into());
    }
    let docs = provdb::smart::read_collection_documents(&args.collection)?;
    let temp = tempfile::tempdir()?;
    let work = match &args.dir {
        Some(dir) => empty_dir(dir)?,
        None => temp.path().to_path_buf(),
    };
    eprintln!("generating {} records ...", args.records);
    let inputs = |name: &str, signed: bool| {
        write_inputs(&docs, args.records, args.batch, &work.join(name), signed)
    };
    let (plain_files, bytes) = inputs("plain", false)?;
    eprintln!(
        "raw RocksDB and provdb unsigned, {} runs each ...",
        args.runs
    );
    let mut raw_runs = Vec::with_capacity(args.runs);
    let mut plain_runs = Vec::with_capacity(args.runs);
    let mut plain_records = 0;
    let mut kept = None;
    for run in 0..args.runs {
        let (raw_dir, plain_dir) = (
            work.join(format!("raw-{run}")),
            work.join(format!("db-plain-{run}")),
        );
        raw_runs.push(raw_rocksdb(&raw_dir, &plain_files)?);
        let (time, records) = ingest_all(&plain_dir, &plain_files, false)?;
        plain_runs.push(time);
        plain_records = records;
        if args.dir.is_some() && run + 1 == args.runs {
            kept = Some(Kept {
                raw_rocksdb: raw_dir,
                unsigned: plain_dir,
                signed: None,
            });
        } else {
            // Each run starts from an empty database and a disk without the last run's files.
            fs_err::remove_dir_all(raw_dir)?;
            fs_err::remove_dir_all(plain_dir)?;
        }
    }
    let (raw, plain) = (median(&raw_runs), median(&plain_runs));
    let signed = if args.unsigned_only {
        None
    } else {
        let (signed_files, signed_bytes) = inputs("signed", true)?;
        eprintln!("provdb ingest, signed ...");
        let signed_dir = work.join("db-signed");
        let (time, records) = ingest_all(&signed_dir, &signed_files, true)?;
        if let Some(kept) = kept.as_mut() {
            kept.signed = Some(signed_dir);
        }
        Some((
            Rate::new(time, records, signed_bytes),
            raw.seconds / time.seconds,
        ))
    };
    let report = Report {
        records: plain_records,
        files: plain_files.len(),
        input_bytes: bytes,
        runs: args.runs,
        unsigned: Rate::new(plain, plain_records, bytes),
        raw_rocksdb: Rate::new(raw, plain_records, bytes),
        unsigned_vs_raw: raw.seconds / plain.seconds,
        unsigned_vs_raw_per_run: per_run_ratios(&raw_runs, &plain_runs),
        raw_rocksdb_seconds_per_run: raw_runs.iter().map(|r| r.seconds).collect(),
        unsigned_seconds_per_run: plain_runs.iter().map(|r| r.seconds).collect(),
        signed_vs_raw: signed.as_ref().map(|s| s.1),
        signed: signed.map(|s| s.0),
        target_unsigned_vs_raw: 0.5,
        kept,
    };
    if args.json {
        return print_json(&report);
    }
    println!(
        "ingest of {} records ({:.1} MB of JSONL in {} files)",
        report.records,
        bytes as f64 / 1e6,
        report.files
    );
    let rates = [
        ("raw RocksDB WriteBatch", Some(&report.raw_rocksdb)),
        ("provdb, unsigned", Some(&report.unsigned)),
        ("provdb, signed", report.signed.as_ref()),
    ];
    for (name, rate) in rates {
        if let Some(rate) = rate {
            let cpu = rate
                .cpu_seconds
                .map(|cpu| format!(" (CPU {cpu:.2} s)"))
                .unwrap_or_default();
            println!(
                "  {name:<24} {:>8.0} records/s {:>7.1} MB/s {:>7.2} s{cpu}",
                rate.records_per_s, rate.mb_per_s, rate.seconds
            );
        }
    }
    let per_run: Vec<String> = report
        .unsigned_vs_raw_per_run
        .iter()
        .map(|r| format!("{r:.2}"))
        .collect();
    println!(
        "  unsigned / raw = {:.2} (target >= 0.5; medians of {} runs, per run: {})",
        report.unsigned_vs_raw,
        report.runs,
        per_run.join(" ")
    );
    if let Some(ratio) = report.signed_vs_raw {
        println!("  signed / raw = {ratio:.2}");
    }
    if let Some(dir) = &args.dir {
        println!("  the last run's databases are kept in {}", dir.display());
    }
    Ok(())
}

/// `dir`, created when absent; a user error when it holds anything.
fn empty_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    fs_err::create_dir_all(dir)?;
    if fs_err::read_dir(dir)?.next().is_some() {
        return Err(UserError(format!("--dir {} is not empty", dir.display())).into());
    }
    Ok(dir.to_path_buf())
}

/// The median wall time and the median CPU time of `runs` (the lower middle ones of an even
/// count).
fn median(runs: &[Timed]) -> Timed {
    let middle = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values.get(values.len().saturating_sub(1) / 2).copied()
    };
    Timed {
        seconds: middle(runs.iter().map(|r| r.seconds).collect()).unwrap_or(f64::NAN),
        cpu_seconds: middle(runs.iter().filter_map(|r| r.cpu_seconds).collect()),
    }
}

fn per_run_ratios(raw: &[Timed], plain: &[Timed]) -> Vec<f64> {
    raw.iter()
        .zip(plain)
        .map(|(r, p)| r.seconds / p.seconds)
        .collect()
}
