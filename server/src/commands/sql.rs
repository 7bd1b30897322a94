//! `provdb sql QUERY [--format table|json|csv] [--as ADDR]`.

use std::path::Path;
use std::time::Duration;

use provdb::query::arrow::array::RecordBatch;
use provdb::{Address, Caller, Db, QueryLimits, QueryOutput};

use crate::cli::{SqlArgs, SqlFormat};
use crate::commands::load_embedder;
use crate::output::{UserError, parse_arg};

pub(crate) fn run(data: &Path, args: SqlArgs) -> anyhow::Result<()> {
    let mut db = Db::open(data)?;
    // The vector retriever needs the embedder; load it only for queries that can use it.
    let lowered = args.query.to_ascii_lowercase();
    if (lowered.contains("vector_search") || lowered.contains("hybrid_search"))
        && let Some(embedder) = load_embedder(args.model.as_deref())?
    {
        db = db.with_embedder(embedder);
    }
    let caller = match &args.caller {
        Some(address) => Caller::address(parse_arg::<Address>(address, "--as")?),
        None => Caller::anonymous(),
    };
    if args.timeout == 0 || args.memory_mb == 0 {
        return Err(UserError("--timeout and --memory-mb must be positive".into()).into());
    }
    let limits = QueryLimits {
        timeout: Duration::from_secs(args.timeout),
        memory_bytes: args.memory_mb << 20,
        max_rows: (args.max_rows > 0).then_some(args.max_rows),
    };
    let output = db.sql(&args.query, caller, limits)?;
    print(&output, args.format)?;
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
