//! [`SentenceEmbedder`]: the sentence embedder of provdb-inference as the index's [`Embed`].

use std::path::Path;

use provdb_index::{Embed, IndexError};
use provdb_inference::{Embedder, EmbedderConfig};

use crate::error::Result;

/// The sentence embedder as the index sees it.
pub struct SentenceEmbedder {
    embedder: Embedder,
    model_id: String,
}

impl SentenceEmbedder {
    /// Loads the embedder in `dir` (a MiniLM-class model directory).
    pub fn load(dir: &Path) -> Result<Self> {
        let embedder = Embedder::load(dir, EmbedderConfig::default())?;
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into());
        Ok(Self {
            model_id: format!("{name}/{}", embedder.dim()),
            embedder,
        })
    }
}

impl Embed for SentenceEmbedder {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn dim(&self) -> usize {
        self.embedder.dim()
    }

    fn embed(&self, texts: &[&str]) -> provdb_index::Result<Vec<Vec<f32>>> {
        self.embedder
            .embed(texts)
            .map_err(|e| IndexError::Embed(e.to_string()))
    }

    fn token_count(&self, text: &str) -> Option<usize> {
        let ids = self.embedder.token_ids(text).ok()?;
        Some(ids.len().min(self.embedder.max_tokens()))
    }
}
