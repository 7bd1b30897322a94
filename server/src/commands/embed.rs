//! `provdb embed TEXT...`.

use provdb::inference::{Embedder, EmbedderConfig, model_files};

use crate::cli::EmbedArgs;
use crate::output::print_json;

pub(crate) fn run(args: EmbedArgs) -> anyhow::Result<()> {
    let dir = args.model.unwrap_or_else(model_files::default_embedder_dir);
    let embedder = Embedder::load(&dir, EmbedderConfig::default())?;
    let texts: Vec<&str> = args.texts.iter().map(String::as_str).collect();
    let embeddings = embedder.embed(&texts)?;
    if args.json {
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
