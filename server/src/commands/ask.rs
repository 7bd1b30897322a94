//! `provdb ask NAME QUESTION`: a cited answer, streamed to a terminal, then its citations and
//! who is paid; `--json` prints one document instead.

use std::io::{IsTerminal, Write};
use std::path::Path;

use clap::{Args, ValueEnum};
use provdb::inference::llama::LlamaModel;
use provdb::{AskRequest, Attribution, Db, SearchMode};

use crate::cli::options::{AdapterMixArgs, CallerArgs, SearchModeArg, ServingModelArgs};
use crate::output::{print_json, print_table};

/// `provdb ask`.
#[derive(Debug, Args)]
pub(crate) struct AskArgs {
    /// Datanet to answer from.
    name: String,
    /// The question.
    question: String,
    /// More Datanets to retrieve from.
    #[arg(long = "datanet")]
    more: Vec<String>,
    /// Sources to retrieve.
    #[arg(short, long, default_value_t = 4)]
    k: usize,
    /// Which retrievers find the sources.
    #[arg(long, value_enum, default_value_t = SearchModeArg::Hybrid)]
    mode: SearchModeArg,
    /// The most this answer may cost, in wei: priced above it (at --max-tokens), it is refused
    /// before any work (exit 1). The fee itself comes from the prices (`provdb price list`).
    #[arg(long, value_name = "WEI", value_parser = parse_wei)]
    max_fee: Option<u128>,
    /// The operator's cap on one answer's fee, in wei.
    #[arg(long, default_value_t = provdb::DEFAULT_MAX_FEE_WEI, value_name = "WEI",
          value_parser = parse_wei)]
    max_fee_wei: u128,
    /// Who is paid: the verified citations or leave-one-out.
    #[arg(long, value_enum, default_value_t = AttributionArg::Cited)]
    attribution: AttributionArg,
    #[command(flatten)]
    adapters: AdapterMixArgs,
    #[command(flatten)]
    caller: CallerArgs,
    /// Longest answer, in tokens.
    #[arg(long, default_value_t = 160)]
    max_tokens: usize,
    #[command(flatten)]
    models: ServingModelArgs,
}

/// An amount in wei: a whole number below 2^128.
pub(crate) fn parse_wei(text: &str) -> Result<u128, String> {
    text.parse()
        .map_err(|_| "an amount in wei must be a whole number below 2^128".to_string())
}

/// Attribution methods (`--attribution`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum AttributionArg {
    /// The verified citation markers, weighted by retrieval score.
    Cited,
    /// Leave-one-out: each source weighted by how much removing it lowers the answer's
    /// log-probability.
    Loo,
}

impl From<AttributionArg> for Attribution {
    fn from(method: AttributionArg) -> Self {
        match method {
            AttributionArg::Cited => Self::Cited,
            AttributionArg::Loo => Self::Loo,
        }
    }
}

/// With `--json`, prints one document: answer_id, answer, citations, split (amounts as
/// decimal strings), usage.
pub(crate) fn run(data: &Path, json: bool, args: AskArgs) -> anyhow::Result<()> {
    let mut db = Db::open(data)?.with_max_fee_wei(args.max_fee_wei);
    // Check what the user typed before loading models.
    db.datanet_info(&args.name)?;
    let mode = SearchMode::from(args.mode);
    let mut datanets = vec![args.name.clone()];
    datanets.extend(args.more.iter().cloned());
    let request = AskRequest {
        datanets,
        question: args.question.clone(),
        k: args.k,
        mode,
        adapters: args.adapters.specs(),
        max_fee_wei: args.max_fee,
        attribution: args.attribution.into(),
        caller: args.caller.caller(),
        max_tokens: args.max_tokens,
    };
    // A bad limit is refused before the models load.
    request.validate()?;
    if mode != SearchMode::Bm25
        && let Some(embedder) = args.models.load_embedder()?
    {
        db = db.with_embedder(embedder);
    }
    let path = args.models.generator.path();
    db = db
        .with_generator(
            LlamaModel::load(&path)?,
            provdb::models::generator_name(&path),
        )
        .with_adapter_cache_bytes(args.models.adapter_cache_bytes);
    let stream = !json && std::io::stdout().is_terminal();
    let mut stdout = std::io::stdout();
    let answer = db.ask(&request, &mut |piece| {
        if stream {
            // A closed stdout ends generation quietly.
            return stdout
                .write_all(piece.as_bytes())
                .and_then(|()| stdout.flush())
                .is_ok();
        }
        true
    })?;
    if json {
        return print_json(&answer);
    }
    if stream {
        println!("\n");
    } else {
        println!("{}\n", answer.answer);
    }
    let rows: Vec<Vec<String>> = answer
        .citations
        .iter()
        .map(|c| {
            vec![
                if c.marker == 0 {
                    "-".into()
                } else {
                    format!("[{}]", c.marker)
                },
                c.datanet.clone(),
                c.record_id.to_string()[..18].to_string(),
                c.contributor.to_string(),
                format!("{:.3}", c.retrieval_score),
                format!("{:.1}%", f64::from(c.weight_ppm) / 1e4),
                c.snippet.chars().take(48).collect(),
            ]
        })
        .collect();
    if rows.is_empty() {
        println!("no verified citation: the data share goes to the Datanets' treasuries");
    } else {
        print_table(
            &[
                "cite",
                "datanet",
                "record",
                "contributor",
                "score",
                "weight",
                "snippet",
            ],
            &rows,
        );
    }
    println!();
    let split: Vec<Vec<String>> = answer
        .split
        .iter()
        .map(|p| {
            vec![
                p.to.to_string(),
                p.role.as_str().into(),
                p.amount_wei.to_string(),
            ]
        })
        .collect();
    print_table(&["to", "role", "amount_wei"], &split);
    eprintln!(
        "answer {} · {} prompt + {} answer tokens · retrieval {:.0} ms, generation {:.0} ms, attribution ({}) {:.0} ms",
        answer.answer_id,
        answer.usage.prompt_tokens,
        answer.usage.completion_tokens,
        answer.usage.retrieval_ms,
        answer.usage.generation_ms,
        answer.attribution.as_str(),
        answer.usage.attribution_ms
    );
    Ok(())
}
