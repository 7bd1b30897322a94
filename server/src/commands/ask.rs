//! `provdb ask NAME QUESTION`: a cited answer, streamed to a terminal, then its citations and
//! who is paid; `--json` prints one document instead.

use std::io::{IsTerminal, Write};

use provdb::inference::llama::LlamaModel;
use provdb::inference::model_files;
use provdb::{Address, AskRequest, Attribution, Caller, Db, SearchMode};

use crate::cli::AskArgs;
use crate::commands::load_embedder;
use crate::output::{UserError, parse_arg, print_json, print_table};

pub(crate) fn run(data: &std::path::Path, args: AskArgs) -> anyhow::Result<()> {
    let mut db = Db::open(data)?;
    // Check what the user typed before loading models.
    db.datanet_info(&args.name)?;
    let caller = match &args.caller {
        Some(address) => Caller::address(parse_arg::<Address>(address, "--as")?),
        None => Caller::anonymous(),
    };
    let fee_wei: u128 = args.fee.parse().map_err(|_| {
        UserError(format!(
            "--fee must be a whole number of wei, got '{}'",
            args.fee
        ))
    })?;
    let attribution: Attribution = parse_arg(&args.attribution, "--attribution")?;
    let mode: SearchMode = parse_arg(&args.mode, "--mode")?;
    let mut datanets = vec![args.name.clone()];
    datanets.extend(args.more.iter().cloned());
    let request = AskRequest {
        datanets,
        question: args.question.clone(),
        k: args.k,
        mode,
        adapters: args.adapters.clone(),
        fee_wei,
        attribution,
        caller,
        max_tokens: args.max_tokens,
    };
    if mode != SearchMode::Bm25
        && let Some(embedder) = load_embedder(args.embedder.as_deref())?
    {
        db = db.with_embedder(embedder);
    }
    let path = args
        .model
        .clone()
        .unwrap_or_else(model_files::default_generator_path);
    let name = path
        .file_name()
        .map_or_else(|| "model".into(), |n| n.to_string_lossy().into_owned());
    db = db
        .with_generator(LlamaModel::load(&path)?, name)
        .with_adapter_cache_bytes(args.adapter_cache_bytes);
    let stream = !args.json && std::io::stdout().is_terminal();
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
    if args.json {
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
