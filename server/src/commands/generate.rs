//! `provdb generate PROMPT`: tokens stream to stdout as they are produced. With `--json`, one
//! object at the end instead: the text, token counts and, with adapters the Model Factory
//! trained, each one's most influential training records (`training_attribution`, as `ask`
//! shows it; nothing is paid).

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use provdb::Db;
use provdb::inference::llama::{Llama, SamplingParams};
use provdb::inference::lora::AdapterCache;
use serde_json::json;

use crate::cli::options::{AdapterMixArgs, CallerArgs, GeneratorArgs};
use crate::commands::price::acting;
use crate::output::UserError;

/// `provdb generate`.
#[derive(Debug, Args)]
pub(crate) struct GenerateArgs {
    /// The prompt (sent as one user turn of the model's chat template unless --raw).
    prompt: String,
    /// Most new tokens.
    #[arg(long, default_value_t = 256)]
    max_tokens: usize,
    /// Sampling temperature; 0 is greedy.
    #[arg(long, default_value_t = 0.0)]
    temperature: f64,
    /// Nucleus sampling threshold.
    #[arg(long, default_value_t = 1.0)]
    top_p: f64,
    /// Sampler seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Continue the prompt as plain text instead of a chat turn.
    #[arg(long)]
    raw: bool,
    #[command(flatten)]
    adapters: AdapterMixArgs,
    #[command(flatten)]
    generator: GeneratorArgs,
    #[command(flatten)]
    caller: CallerArgs,
}

pub(crate) fn run(data: &Path, json: bool, args: GenerateArgs) -> anyhow::Result<()> {
    if !(0.0..=1.0).contains(&args.top_p) || args.temperature < 0.0 {
        return Err(UserError("--top-p must be in 0..1 and --temperature >= 0".into()).into());
    }
    let mut model = Llama::load(&args.generator.path())?;
    if !args.adapters.adapters.is_empty() {
        let store = provdb::adapter_store_at(data);
        let cache = AdapterCache::new(store, Arc::clone(model.model()), usize::MAX);
        model.set_adapters(cache.mix(&args.adapters.specs())?);
    }
    let prompt = if args.raw {
        args.prompt.clone()
    } else {
        model.chat_prompt(&args.prompt)
    };
    let ids = model.encode(&prompt)?;
    let params = SamplingParams {
        max_tokens: args.max_tokens,
        temperature: args.temperature,
        top_p: args.top_p,
        seed: args.seed,
    };
    let started = Instant::now();
    let mut stdout = std::io::stdout();
    let tokens = model.generate(&ids, params, &mut |piece| {
        // A closed stdout (a pipe that went away) ends generation quietly.
        json || stdout
            .write_all(piece.as_bytes())
            .and_then(|()| stdout.flush())
            .is_ok()
    })?;
    let seconds = started.elapsed().as_secs_f64();
    if !json {
        println!();
        eprintln!(
            "{} prompt tokens, {} new tokens in {seconds:.2} s",
            ids.len(),
            tokens.len()
        );
        return Ok(());
    }
    let training_attribution = if args.adapters.adapters.is_empty() {
        Vec::new()
    } else {
        let db = Db::open(data)?.with_generator(Arc::clone(model.model()), "generate");
        let caller = acting(&db, &args.caller)?;
        db.training_influence(&caller, &args.adapters.specs(), &ids, &tokens)?
    };
    let out = json!({
        "text": model.decode(&tokens)?,
        "prompt_tokens": ids.len(),
        "completion_tokens": tokens.len(),
        "seconds": seconds,
        "training_attribution": training_attribution,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
