//! `provdb sql QUERY [--format table|json|csv] [--as ADDR]`.

use std::path::Path;
use std::time::Duration;

use clap::{Args, ValueEnum};
use provdb::query::arrow::array::RecordBatch;
use provdb::{Db, QueryLimits, QueryOutput};

use crate::cli::options::{CallerArgs, EmbedderArgs};
use crate::output::UserError;

/// `provdb sql`.
#[derive(Debug, Args)]
pub(crate) struct SqlArgs {
    /// The query.
    query: String,
    /// Output format (`--json` is `--format json`).
    #[arg(long, value_enum, default_value_t = SqlFormat::Table)]
    format: SqlFormat,
    #[command(flatten)]
    caller: CallerArgs,
    /// Print at most this many rows (0: all).
    #[arg(long, default_value_t = 1000)]
    max_rows: usize,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// DataFusion's memory pool for this query, in MiB (also counts the collected result
    /// and what `repeat`, `lpad`, `rpad` and `replace` produce).
    #[arg(long, default_value_t = 512)]
    memory_mb: usize,
    /// Largest result, in MiB.
    #[arg(long, default_value_t = QueryLimits::default().max_result_bytes >> 20)]
    max_result_mb: usize,
    // The embedder serves `vector_search` and `hybrid_search`.
    #[command(flatten)]
    embedder: EmbedderArgs,
}

/// Output formats of `provdb sql`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum SqlFormat {
    /// An aligned text table.
    Table,
    /// A JSON array of row objects.
    Json,
    /// CSV with a header row.
    Csv,
}

pub(crate) fn run(data: &Path, json: bool, args: SqlArgs) -> anyhow::Result<()> {
    let mut db = Db::open(data)?;
    // The vector retriever needs the embedder; load it only for queries that can use it.
    let lowered = args.query.to_ascii_lowercase();
    if (lowered.contains("vector_search") || lowered.contains("hybrid_search"))
        && let Some(embedder) = args.embedder.load()?
    {
        db = db.with_embedder(embedder);
    }
    let caller = args.caller.caller();
    if args.timeout == 0 || args.memory_mb == 0 || args.max_result_mb == 0 {
        return Err(UserError(
            "--timeout, --memory-mb and --max-result-mb must be positive".into(),
        )
        .into());
    }
    let limits = QueryLimits {
        timeout: Duration::from_secs(args.timeout),
        memory_bytes: args.memory_mb << 20,
        max_rows: (args.max_rows > 0).then_some(args.max_rows),
        max_result_bytes: args.max_result_mb.saturating_mul(1 << 20),
    };
    let output = db.sql(&args.query, caller, limits)?;
    let format = if json { SqlFormat::Json } else { args.format };
    print(&output, format)?;
    if output.truncated {
        eprintln!(
            "(output cut at {} rows; --max-rows 0 prints all)",
            args.max_rows
        );
    }
    Ok(())
}

fn print(output: &QueryOutput, format: SqlFormat) -> anyhow::Result<()> {
    let batches: &[RecordBatch] = &output.batches;
    match format {
        SqlFormat::Table => {
            let table = provdb::query::arrow::util::pretty::pretty_format_batches(batches)?;
            println!("{table}");
            println!("{} row(s)", output.rows());
        }
        SqlFormat::Json => {
            let mut writer = provdb::query::arrow::json::ArrayWriter::new(Vec::new());
            for batch in batches {
                writer.write(batch)?;
            }
            writer.finish()?;
            let bytes = writer.into_inner();
            if bytes.is_empty() {
                println!("[]");
            } else {
                println!("{}", String::from_utf8(bytes)?);
            }
        }
        SqlFormat::Csv => {
            let mut writer = provdb::query::arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(std::io::stdout());
            if batches.is_empty() {
                let header: Vec<&str> = output
                    .schema
                    .fields()
                    .iter()
                    .map(|f| f.name().as_str())
                    .collect();
                println!("{}", header.join(","));
            }
            for batch in batches {
                writer.write(batch)?;
            }
        }
    }
    Ok(())
}
