//! `provdb generate PROMPT`: tokens stream to stdout as they are produced.

use std::io::Write;
use std::time::Instant;

use provdb::inference::llama::{Llama, SamplingParams};
use provdb::inference::lora::AdapterCache;
use provdb::inference::model_files;
use std::sync::Arc;

use crate::cli::GenerateArgs;
use crate::output::UserError;

pub(crate) fn run(data: &std::path::Path, args: GenerateArgs) -> anyhow::Result<()> {
    if !(0.0..=1.0).contains(&args.top_p) || args.temperature < 0.0 {
        return Err(UserError("--top-p must be in 0..1 and --temperature >= 0".into()).into());
    }
    let path = args
        .model
        .unwrap_or_else(model_files::default_generator_path);
    let mut model = Llama::load(&path)?;
    if !args.adapters.is_empty() {
        let store = provdb::adapter_store_at(data);
        let cache = AdapterCache::new(store, Arc::clone(model.model()), usize::MAX);
        model.set_adapters(cache.mix(&args.adapters)?);
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
        stdout
            .write_all(piece.as_bytes())
            .and_then(|()| stdout.flush())
            .is_ok()
    })?;
    println!();
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "{} prompt tokens, {} new tokens in {seconds:.2} s",
        ids.len(),
        tokens.len()
    );
    Ok(())
}
