//! `provdb bench ingest`: records/s and MB/s ingesting a replicated Cranfield (JSONL files of
//! `--batch` records, one all-or-nothing batch each), without and with signature checks, and
//! the raw RocksDB `WriteBatch` rate for the same input bytes (the same batch boundaries, the
//! same fsync per batch, lines held in memory so that only the write is timed).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use provdb::smart::SmartDoc;
use provdb::{Datanet, Db, IngestOptions};
use serde::Serialize;

use crate::cli::BenchIngestArgs;
use crate::output::{UserError, print_json};

#[derive(Serialize)]
struct Rate {
    seconds: f64,
    records_per_s: f64,
    mb_per_s: f64,
}

impl Rate {
    fn new(seconds: f64, records: usize, bytes: u64) -> Self {
        Self {
            seconds,
            records_per_s: records as f64 / seconds,
            mb_per_s: bytes as f64 / 1e6 / seconds,
        }
    }
}

#[derive(Serialize)]
struct Report {
    records: usize,
    files: usize,
    input_bytes: u64,
    unsigned: Rate,
    signed: Rate,
    raw_rocksdb: Rate,
    unsigned_vs_raw: f64,
    signed_vs_raw: f64,
    target_unsigned_vs_raw: f64,
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
            if let Some(mut file) = out.take() {
                file.flush()?;
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
        let mut row = provdb::demo::signed_row(&doc)?;
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
    if let Some(mut file) = out {
        file.flush()?;
    }
    Ok((paths, bytes))
}

fn ingest_all(dir: &Path, files: &[PathBuf], signed: bool) -> anyhow::Result<(f64, usize)> {
    let db = Db::init(dir)?;
    let mut spec = Datanet::new("bench");
    spec.require_signatures = signed;
    db.create_datanet(spec)?;
    let started = Instant::now();
    let reports = db.ingest_files(
        "bench",
        files,
        &IngestOptions::default(),
        &|_, _| {},
        &mut |_| {},
    )?;
    let records = reports.iter().map(|r| r.accepted).sum();
    Ok((started.elapsed().as_secs_f64(), records))
}

fn raw_rocksdb(dir: &Path, files: &[PathBuf]) -> anyhow::Result<f64> {
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
    let started = Instant::now();
    let mut key = 0u64;
    for lines in &batches {
        let mut batch = rocksdb::WriteBatch::default();
        for line in lines {
            batch.put(key.to_be_bytes(), line);
            key += 1;
        }
        db.write_opt(batch, &write_options)?;
    }
    Ok(started.elapsed().as_secs_f64())
}

pub(crate) fn run(args: BenchIngestArgs) -> anyhow::Result<()> {
    if args.records == 0 || args.batch == 0 {
        return Err(UserError("--records and --batch must be positive".into()).into());
    }
    let docs = provdb::smart::read_collection_documents(&args.collection)?;
    let work = tempfile::tempdir()?;
    eprintln!("generating {} records ...", args.records);
    let (plain_files, bytes) = write_inputs(
        &docs,
        args.records,
        args.batch,
        &work.path().join("plain"),
        false,
    )?;
    let (signed_files, signed_bytes) = write_inputs(
        &docs,
        args.records,
        args.batch,
        &work.path().join("signed"),
        true,
    )?;
    eprintln!("raw RocksDB ...");
    let raw_seconds = raw_rocksdb(&work.path().join("raw"), &plain_files)?;
    eprintln!("provdb ingest, unsigned ...");
    let (plain_seconds, plain_records) =
        ingest_all(&work.path().join("db-plain"), &plain_files, false)?;
    eprintln!("provdb ingest, signed ...");
    let (signed_seconds, signed_records) =
        ingest_all(&work.path().join("db-signed"), &signed_files, true)?;
    let report = Report {
        records: plain_records,
        files: plain_files.len(),
        input_bytes: bytes,
        unsigned: Rate::new(plain_seconds, plain_records, bytes),
        signed: Rate::new(signed_seconds, signed_records, signed_bytes),
        raw_rocksdb: Rate::new(raw_seconds, plain_records, bytes),
        unsigned_vs_raw: raw_seconds / plain_seconds,
        signed_vs_raw: raw_seconds / signed_seconds,
        target_unsigned_vs_raw: 0.5,
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
    for (name, rate) in [
        ("raw RocksDB WriteBatch", &report.raw_rocksdb),
        ("provdb, unsigned", &report.unsigned),
        ("provdb, signed", &report.signed),
    ] {
        println!(
            "  {name:<24} {:>8.0} records/s {:>7.1} MB/s {:>7.2} s",
            rate.records_per_s, rate.mb_per_s, rate.seconds
        );
    }
    println!(
        "  unsigned / raw = {:.2} (target >= 0.5), signed / raw = {:.2}",
        report.unsigned_vs_raw, report.signed_vs_raw
    );
    Ok(())
}
