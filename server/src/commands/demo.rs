//! `provdb demo` and `provdb convert-smart`: the Cranfield collection as a signed Datanet.

use std::path::Path;
use std::time::Instant;

use provdb::storage::ChunkingConfig;
use provdb::{Datanet, Db, IngestOptions};

use crate::cli::{ConvertSmartArgs, DemoArgs};
use crate::commands::datanet::print_info;
use crate::commands::records::RecordView;

pub(crate) fn convert_smart(args: ConvertSmartArgs) -> anyhow::Result<()> {
    let docs = provdb::smart::read_collection_documents(&args.collection)?;
    let written = provdb::demo::write_signed_jsonl(&docs, &args.out)?;
    println!("wrote {written} signed records to {}", args.out.display());
    Ok(())
}

pub(crate) fn run(data: &Path, args: DemoArgs) -> anyhow::Result<()> {
    let name = args
        .collection
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| n.chars().next().is_some_and(|c| c.is_ascii_alphabetic()))
        .unwrap_or("demo")
        .to_ascii_lowercase();
    println!("== 1. Open the database in {}", data.display());
    let db = Db::init(data)?;

    println!(
        "== 2. Convert {} to signed JSONL (one demo key per author)",
        args.collection.display()
    );
    let started = Instant::now();
    let docs = provdb::smart::read_collection_documents(&args.collection)?;
    let jsonl = data.join(format!("{name}.jsonl"));
    let written = provdb::demo::write_signed_jsonl(&docs, &jsonl)?;
    let authors = provdb::smart::authors_of(&docs).len();
    println!(
        "   {written} records by {authors} authors, signed in {:.2} s -> {}",
        started.elapsed().as_secs_f64(),
        jsonl.display()
    );

    println!("== 3. Create datanet '{name}' (signatures required)");
    if db.datanets()?.iter().any(|d| d.name == name) {
        println!("   already there: reusing it");
    } else {
        let mut spec = Datanet::new(&name);
        spec.description =
            "Cranfield aerodynamics abstracts (1,400), from the classic IR test collection".into();
        spec.license = "MIT".into();
        spec.require_signatures = true;
        spec.chunking = ChunkingConfig::default();
        db.create_datanet(spec)?;
    }

    println!("== 4. Ingest: every signature is recovered and checked against its contributor");
    let started = Instant::now();
    match db.ingest_file(&name, &jsonl, &IngestOptions::default()) {
        Ok(report) => println!(
            "   {} records, {} chunks, sequence {} in {:.2} s",
            report.accepted,
            report.chunks,
            report.sequence.unwrap_or(0),
            started.elapsed().as_secs_f64()
        ),
        Err(e) if e.is_user_error() => println!("   refused, nothing stored: {e}"),
        Err(e) => return Err(e.into()),
    }

    println!("== 5. Datanet stats");
    print_info(&db.datanet_info(&name)?)?;

    println!("== 6. A record with its provenance");
    if let Some(record) = db.records(&name, 1)?.first() {
        println!(
            "{}",
            serde_json::to_string_pretty(&RecordView::new(record, &name))?
        );
    }
    Ok(())
}
