//! `provdb demo` and `provdb convert-smart`: the Cranfield collection as a signed Datanet.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use provdb::inference::llama::LlamaModel;
use provdb::models::{generator_name, generator_path, load_embedder};
use provdb::query::arrow::util::pretty::pretty_format_batches;
use provdb::storage::{ChunkingConfig, LedgerPolicy};
use provdb::{
    AskRequest, Attribution, Caller, Datanet, Db, IngestOptions, PriceScope, QueryLimits,
};

use crate::commands::datanet::print_info;
use crate::output::UserError;
use crate::views::RecordView;

/// 0.001 ether, in wei.
const MILLI_ETH: u128 = 1_000_000_000_000_000;

/// `provdb convert-smart`.
#[derive(Debug, Args)]
pub(crate) struct ConvertSmartArgs {
    /// Collection directory (cran.all.1400 or *.ALL).
    collection: PathBuf,
    /// Output JSONL file.
    #[arg(long)]
    out: PathBuf,
    /// The Datanet the records are signed for (EIP-712 signatures name it).
    #[arg(long, default_value = "cranfield")]
    datanet: String,
}

/// `provdb demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// The collection to load.
    #[arg(long, default_value = "data/cranfield")]
    collection: PathBuf,
    /// The question the demo asks.
    #[arg(
        long,
        default_value = "What is the effect of a propeller slipstream on the lift of a wing?"
    )]
    question: String,
    /// Only the first N documents (a quicker demo).
    #[arg(long)]
    limit: Option<usize>,
    /// Ask as this account, paying from the balance it has (a deposit that `provdb chain
    /// sync` credited: scripts/demo.sh), instead of a demo caller credited off chain.
    #[arg(long, value_name = "ADDRESS")]
    asker: Option<provdb::Address>,
}

pub(crate) fn convert_smart(args: ConvertSmartArgs) -> anyhow::Result<()> {
    let docs = provdb::smart::read_collection_documents(&args.collection)?;
    let written = provdb::demo::write_signed_jsonl(&docs, &args.datanet, &args.out)?;
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
    let mut docs = provdb::smart::read_collection_documents(&args.collection)?;
    if let Some(limit) = args.limit {
        docs.truncate(limit);
    }
    let jsonl = data.join(format!("{name}.jsonl"));
    let written = provdb::demo::write_signed_jsonl(&docs, &name, &jsonl)?;
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
        // The curator's treasury holds the data share of answers that use no source.
        spec.owner = Some(provdb::ingest::address_of_key(&provdb::demo::demo_key(
            "curator",
        ))?);
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
    answer_and_pay(db, &name, &args.question, args.asker)
}

/// Steps 7-11: index, a cited answer paid by leave-one-out attribution, the ledger, an epoch.
fn answer_and_pay(
    db: Db,
    name: &str,
    question: &str,
    asker: Option<provdb::Address>,
) -> anyhow::Result<()> {
    let embedder = load_embedder(None)?
        .ok_or_else(|| UserError("the embedder is missing: run scripts/fetch-models.sh".into()))?;
    let path = generator_path(None);
    let db = db
        .with_embedder(embedder)
        .with_generator(LlamaModel::load(&path)?, generator_name(&path));

    println!("== 7. Index the Datanet: BM25 and MiniLM vectors (once; later runs catch up)");
    let started = Instant::now();
    let caught = db.catch_up_index(name, &|_, _, _| {})?;
    println!(
        "   {} chunks: {} added to BM25, {} embedded, in {:.1} s",
        caught.chunks,
        caught.text_chunks,
        caught.vector_chunks,
        started.elapsed().as_secs_f64()
    );

    let funding = match asker {
        Some(_) => "the caller pays from its deposit",
        None => "a caller credited 0.05 ETH off chain (a card payment)",
    };
    println!(
        "== 8. Prices: the model 0.001 ETH per answer (to its owner), the Datanet 0.009 ETH \
         (to its contributors), 5% of each to the protocol; {funding}"
    );
    let demo_account = |who: &str| provdb::ingest::address_of_key(&provdb::demo::demo_key(who));
    db.set_ledger_policy(&LedgerPolicy {
        model_owner: Some(demo_account("model-owner")?),
        model_owner_bps: 0,
        protocol: Some(demo_account("protocol")?),
        protocol_bps: 500,
    })?;
    let operator = Caller::admin(db.operator()?);
    let model = db
        .generator_model()
        .map(|(_, name)| name.to_string())
        .ok_or_else(|| UserError("no generator model is loaded".into()))?;
    db.set_price(&operator, PriceScope::Model(model), MILLI_ETH, 0)?;
    let datanet_id = db.datanet_info(name)?.id;
    db.set_price(&operator, PriceScope::Datanet(datanet_id), 9 * MILLI_ETH, 0)?;
    let asker = match asker {
        // Its money came in on chain: a deposit `provdb chain sync` credited.
        Some(asker) => asker,
        None => {
            let asker = demo_account("asker")?;
            db.credit(&operator, asker, 50 * MILLI_ETH, "demo: a card payment")?;
            asker
        }
    };

    println!("== 9. Ask as {asker}, attributed by leave-one-out (measured use)");
    println!("   Q: {question}");
    print!("   A: ");
    let request = AskRequest {
        datanets: vec![name.to_string()],
        question: question.to_string(),
        k: 3,
        attribution: Attribution::Loo,
        caller: Caller::address(asker),
        max_tokens: 64,
        ..AskRequest::default()
    };
    let mut stdout = std::io::stdout();
    let answer = db.ask(&request, &mut |piece| {
        stdout
            .write_all(piece.as_bytes())
            .and_then(|()| stdout.flush())
            .is_ok()
    })?;
    println!();
    for citation in &answer.citations {
        println!(
            "   source {} by {} (weight {:.1}%): {}...",
            citation.record_id.to_string().get(..12).unwrap_or_default(),
            citation.contributor,
            f64::from(citation.weight_ppm) / 1e4,
            citation.snippet.chars().take(70).collect::<String>()
        );
    }
    println!(
        "   {} prompt + {} answer tokens; retrieval {:.0} ms, generation {:.0} ms, attribution {:.0} ms",
        answer.usage.prompt_tokens,
        answer.usage.completion_tokens,
        answer.usage.retrieval_ms,
        answer.usage.generation_ms,
        answer.usage.attribution_ms
    );
    let (account, _) = db.account(&asker)?;
    println!(
        "   fee {} wei charged to {asker}: balance {} of {} wei credited",
        answer.fee_wei, account.balance_wei, account.credited_wei
    );

    println!("== 10. The attribution of this answer, from SQL");
    let sql = format!(
        "SELECT contributor, role, weight_ppm, amount_wei FROM attributions \
         WHERE answer_id = '{}' ORDER BY amount_wei DESC",
        answer.answer_id
    );
    println!("   {sql}");
    let output = db.sql(&sql, Caller::anonymous(), QueryLimits::default())?;
    println!("{}", pretty_format_batches(&output.batches)?);

    println!("== 11. Verify the hash-chained ledger, close an epoch");
    let check = db.verify_ledger()?;
    match &check.broken {
        None => println!(
            "   ledger ok: {} entries, head 0x{}",
            check.entries,
            hex::encode(check.head)
        ),
        Some((seq, reason)) => println!("   ledger BROKEN at entry {seq}: {reason}"),
    }
    let epoch = db.close_epoch()?;
    println!(
        "   epoch {}: {} accounts, {} wei, Merkle root 0x{}",
        epoch.epoch,
        epoch.accounts,
        epoch.total_wei,
        hex::encode(epoch.root)
    );
    Ok(())
}
