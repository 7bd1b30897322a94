//! `provdb embed TEXT...`.

use clap::Args;
use provdb::inference::{Embedder, EmbedderConfig};

use crate::cli::options::EmbedderArgs;
use crate::output::print_json;

/// `provdb embed`.
#[derive(Debug, Args)]
pub(crate) struct EmbedArgs {
    /// Texts to embed.
    #[arg(required = true)]
    texts: Vec<String>,
    #[command(flatten)]
    embedder: EmbedderArgs,
}

/// Prints JSON `{"model", "dim", "embeddings": [[...], ...]}` with `--json`.
pub(crate) fn run(json: bool, args: EmbedArgs) -> anyhow::Result<()> {
    let dir = args.embedder.dir();
    let embedder = Embedder::load(&dir, EmbedderConfig::default())?;
    let texts: Vec<&str> = args.texts.iter().map(String::as_str).collect();
    let embeddings = embedder.embed(&texts)?;
    if json {
        return print_json(
            &serde_json::json!({ "model": dir, "dim": embedder.dim(), "embeddings": embeddings }),
        );
    }
    for (text, vector) in texts.iter().zip(&embeddings) {
        let head: Vec<String> = vector.iter().take(6).map(|x| format!("{x:+.4}")).collect();
        println!(
            "{text:?}: [{}, ...] ({} dims)",
            head.join(", "),
            vector.len()
        );
    }
    Ok(())
}
