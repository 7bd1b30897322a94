//! `provdb bench answer`: the ledger and the answer pipeline.
//!
//! - Ledger append: `--entries` entries in answers of five payments, `--group` answers per
//!   commit (one `WriteBatch`, one fsync), against raw RocksDB writing the same encoded bytes
//!   with the same batches and fsyncs in the same run. Target >= 50,000 entries/s.
//! - Epoch close over all of them (cumulative balances of `--accounts` accounts and their
//!   Merkle tree). Target under 10 s for 1,000,000 entries.
//! - Answers (unless `--ledger-only`): `--records` Cranfield abstracts indexed with MiniLM,
//!   then questions answered by SmolLM2 with `cited` and `loo` attribution; latency split into
//!   retrieval, time to first token (prefill), decode and attribution.
//!
//! `--dir DIR` keeps the database there, and `--print-commits` prints each group as its write
//! is acknowledged: the crash matrix kills this command mid-append and checks that every
//! printed group is in the ledger, whole.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use provdb::inference::llama::LlamaModel;
use provdb::inference::model_files;
use provdb::storage::{
    Address, AnswerId, AnswerRecord, CreditSource, NewAnswer, NewEntry, RecordId, Role,
    StoreOptions,
};
use provdb::{AskRequest, Attribution, Datanet, Db, IngestOptions};
use serde::Serialize;

use crate::output::{UserError, print_json};
use provdb::models::load_embedder;

/// The options of `provdb-bench answer`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Ledger entries to append (answers of five payments).
    #[arg(long, default_value_t = 1_000_000)]
    pub(crate) entries: usize,
    /// Answers per commit (one WriteBatch, one fsync).
    #[arg(long, default_value_t = 64)]
    pub(crate) group: usize,
    /// Distinct accounts paid.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) accounts: u64,
    /// Only the ledger parts (no models).
    #[arg(long)]
    pub(crate) ledger_only: bool,
    /// Print each committed group of the ledger append as soon as its write returns: one
    /// line `committed ID ID ...` of its answer ids, flushed (the crash matrix checks that
    /// every printed group survives a SIGKILL whole).
    #[arg(long, conflicts_with = "json")]
    pub(crate) print_commits: bool,
    /// Cranfield abstracts to index for the answer part.
    #[arg(long, default_value_t = 300)]
    pub(crate) records: usize,
    /// Sources per answer.
    #[arg(short, long, default_value_t = 4)]
    pub(crate) k: usize,
    /// Longest answer, in tokens.
    #[arg(long, default_value_t = 64)]
    pub(crate) max_tokens: usize,
    /// The collection.
    #[arg(long, default_value = "data/cranfield")]
    pub(crate) collection: PathBuf,
    /// Keep the databases in this directory (default: a temporary one).
    #[arg(long)]
    pub(crate) dir: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Serialize)]
struct LedgerReport {
    entries: u64,
    answers_per_commit: usize,
    seconds: f64,
    entries_per_s: f64,
    raw_rocksdb_seconds: f64,
    raw_rocksdb_entries_per_s: f64,
    ratio_vs_raw: f64,
    target_entries_per_s: f64,
    epoch_close_seconds: f64,
    epoch_accounts: u64,
    target_epoch_close_seconds: f64,
}

#[derive(Default, Serialize)]
struct Latency {
    answers: usize,
    retrieval_ms: f64,
    first_token_ms: f64,
    decode_ms: f64,
    attribution_ms: f64,
    total_ms: f64,
    prompt_tokens: f64,
    answer_tokens: f64,
}

#[derive(Serialize)]
struct Report {
    ledger: LedgerReport,
    cited: Option<Latency>,
    loo: Option<Latency>,
}

const PAYMENTS: usize = 5;

/// Who pays the synthetic answers: credited `u128::MAX` once, before the clock starts.
const PAYER: Address = Address([0xfa; 20]);

fn synthetic_answer(n: u64, accounts: u64) -> NewAnswer {
    let mut id = [0u8; 32];
    id[..8].copy_from_slice(&n.to_be_bytes());
    let account = |i: u64| {
        let mut a = [0u8; 20];
        a[12..].copy_from_slice(&((n * 7 + i * 131) % accounts).to_be_bytes());
        Address(a)
    };
    let entries: Vec<NewEntry> = (0..PAYMENTS as u64)
        .map(|i| NewEntry {
            datanet_id: Some(1),
            record_id: Some(RecordId([(n % 251) as u8; 32])),
            chunk_id: Some(n * 8 + i),
            to: account(i),
            role: Role::Contributor,
            weight_ppm: 200_000,
            amount_wei: 1_000_000_000_000 + u128::from(n % 1000),
        })
        .collect();
    NewAnswer {
        record: AnswerRecord {
            answer_id: AnswerId(id),
            ts_ms: 1_800_000_000_000 + n as i64,
            caller: Some(PAYER),
            datanet_ids: vec![1],
            question: "what causes boundary layer transition on a flat plate?".into(),
            text: "transition is caused by tollmien-schlichting waves [1] [2].".into(),
            model: "smollm2".into(),
            adapter: None,
            fee_wei: entries.iter().map(|e| e.amount_wei).sum(),
            attribution: "cited".into(),
            training_attribution: None,
            citations: Vec::new(),
            first_seq: 0,
            entries: 0,
        },
        entries,
    }
}

fn bench_ledger(dir: &Path, args: &Args) -> anyhow::Result<LedgerReport> {
    let db = Db::init(dir.join("ledger"))?;
    let store = db.store();
    let answers = (args.entries as u64).div_ceil(PAYMENTS as u64);
    let group = args.group.max(1) as u64;
    let funds = CreditSource::Admin {
        by: None,
        reason: "bench funds".into(),
    };
    store.credit(PAYER, u128::MAX, funds, 0)?;
    let mut commits = args.print_commits.then(|| std::io::stdout().lock());
    let started = Instant::now();
    let mut n = 0u64;
    while n < answers {
        let end = (n + group).min(answers);
        let batch: Vec<NewAnswer> = (n..end)
            .map(|i| synthetic_answer(i, args.accounts))
            .collect();
        let ids: Option<Vec<AnswerId>> = commits
            .as_ref()
            .map(|_| batch.iter().map(|a| a.record.answer_id).collect());
        store.append_answers(batch)?;
        if let (Some(out), Some(ids)) = (commits.as_mut(), ids) {
            print_commit(out, &ids)?;
        }
        n = end;
    }
    drop(commits);
    let seconds = started.elapsed().as_secs_f64();
    let entries = store.ledger_head()?.0;
    // Raw RocksDB: the same entries (their canonical bytes and both hashes: what the ledger
    // stores, give or take its varints), the same batches and fsyncs, already in memory.
    let mut encoded = Vec::with_capacity(entries as usize);
    store.visit_ledger(1, &mut |entry| {
        let mut bytes = entry.canonical();
        bytes.extend_from_slice(&entry.prev_hash);
        bytes.extend_from_slice(&entry.entry_hash);
        encoded.push((entry.seq, bytes));
        Ok(true)
    })?;
    let raw = rocksdb::DB::open_default(dir.join("raw"))?;
    let per_commit = (group as usize) * PAYMENTS;
    let mut options = rocksdb::WriteOptions::default();
    options.set_sync(StoreOptions::default().sync_writes);
    let started = Instant::now();
    for chunk in encoded.chunks(per_commit) {
        let mut batch = rocksdb::WriteBatch::default();
        for (seq, value) in chunk {
            batch.put(seq.to_be_bytes(), value);
        }
        raw.write_opt(batch, &options)?;
    }
    let raw_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let epoch = db.close_epoch()?;
    let epoch_seconds = started.elapsed().as_secs_f64();
    Ok(LedgerReport {
        entries,
        answers_per_commit: group as usize,
        seconds,
        entries_per_s: entries as f64 / seconds,
        raw_rocksdb_seconds: raw_seconds,
        raw_rocksdb_entries_per_s: entries as f64 / raw_seconds,
        ratio_vs_raw: raw_seconds / seconds,
        target_entries_per_s: 50_000.0,
        epoch_close_seconds: epoch_seconds,
        epoch_accounts: epoch.accounts,
        target_epoch_close_seconds: 10.0,
    })
}

/// Prints one acknowledged group, `committed ID ID ...`, and flushes it: once the line is out,
/// the group is durable.
fn print_commit(out: &mut impl Write, ids: &[AnswerId]) -> std::io::Result<()> {
    write!(out, "committed")?;
    for id in ids {
        write!(out, " {id}")?;
    }
    writeln!(out)?;
    out.flush()
}

const QUESTIONS: [&str; 3] = [
    "What is the effect of a propeller slipstream on the lift of a wing?",
    "How does heat transfer behave in a hypersonic boundary layer?",
    "What causes boundary layer transition?",
];

fn bench_answers(dir: &Path, args: &Args) -> anyhow::Result<(Latency, Latency)> {
    let docs = provdb::smart::read_collection_documents(&args.collection)?;
    let docs: Vec<_> = docs.into_iter().take(args.records).collect();
    let jsonl = dir.join("cranfield.jsonl");
    provdb::demo::write_signed_jsonl(&docs, "cranfield", &jsonl)?;
    let embedder = load_embedder(None)?
        .ok_or_else(|| UserError("the embedder is missing: run scripts/fetch-models.sh".into()))?;
    let generator = LlamaModel::load(&model_files::default_generator_path())?;
    let db = Db::init(dir.join("answers"))?
        .with_embedder(embedder)
        .with_generator(generator, "smollm2");
    let mut spec = Datanet::new("cranfield");
    spec.owner = Some(Address([0xc0; 20]));
    db.create_datanet(spec)?;
    db.ingest_file("cranfield", &jsonl, &IngestOptions::default())?;
    db.catch_up_index("cranfield", &|_, _, _| {})?;
    let run = |attribution| -> anyhow::Result<Latency> {
        let mut total = Latency::default();
        for question in QUESTIONS {
            let request = AskRequest {
                datanets: vec!["cranfield".into()],
                question: question.into(),
                k: args.k,
                attribution,
                max_tokens: args.max_tokens,
                ..AskRequest::default()
            };
            let started = Instant::now();
            let answer = db.ask(&request, &mut |_| true)?;
            let u = answer.usage;
            total.answers += 1;
            total.retrieval_ms += u.retrieval_ms;
            total.first_token_ms += u.first_token_ms;
            total.decode_ms += u.generation_ms - u.first_token_ms;
            total.attribution_ms += u.attribution_ms;
            total.total_ms += started.elapsed().as_secs_f64() * 1e3;
            total.prompt_tokens += u.prompt_tokens as f64;
            total.answer_tokens += u.completion_tokens as f64;
        }
        let n = total.answers as f64;
        for value in [
            &mut total.retrieval_ms,
            &mut total.first_token_ms,
            &mut total.decode_ms,
            &mut total.attribution_ms,
            &mut total.total_ms,
            &mut total.prompt_tokens,
            &mut total.answer_tokens,
        ] {
            *value /= n;
        }
        Ok(total)
    };
    let cited = run(Attribution::Cited)?;
    let loo = run(Attribution::Loo)?;
    Ok((cited, loo))
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let temp = tempfile::tempdir()?;
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| temp.path().to_path_buf());
    fs_err::create_dir_all(&dir)?;
    let ledger = bench_ledger(&dir, &args)?;
    let (cited, loo) = if args.ledger_only {
        (None, None)
    } else {
        let (cited, loo) = bench_answers(&dir, &args)?;
        (Some(cited), Some(loo))
    };
    let report = Report { ledger, cited, loo };
    if args.json {
        return print_json(&report);
    }
    let l = &report.ledger;
    println!(
        "ledger append: {} entries ({} answers per commit) in {:.2} s = {:.0} entries/s (target >= {:.0}); raw RocksDB {:.2} s = {:.0} entries/s; ratio {:.2}",
        l.entries,
        l.answers_per_commit,
        l.seconds,
        l.entries_per_s,
        l.target_entries_per_s,
        l.raw_rocksdb_seconds,
        l.raw_rocksdb_entries_per_s,
        l.ratio_vs_raw
    );
    println!(
        "epoch close: {} entries, {} accounts in {:.2} s (target < {:.0} s)",
        l.entries, l.epoch_accounts, l.epoch_close_seconds, l.target_epoch_close_seconds
    );
    for (name, latency) in [("cited", &report.cited), ("loo", &report.loo)] {
        if let Some(t) = latency {
            println!(
                "answer ({name}, mean of {}): retrieval {:.0} ms, first token {:.0} ms, decode {:.0} ms, attribution {:.0} ms, total {:.0} ms ({:.0} prompt + {:.0} answer tokens)",
                t.answers,
                t.retrieval_ms,
                t.first_token_ms,
                t.decode_ms,
                t.attribution_ms,
                t.total_ms,
                t.prompt_tokens,
                t.answer_tokens
            );
        }
    }
    Ok(())
}
