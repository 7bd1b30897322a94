//! Which model files a caller of the embedded API loads when a user may name them: the path
//! the user named (which must load), else the default under `$PROVDB_MODELS` filled by
//! `scripts/fetch-models.sh`. The CLI and the HTTP server both go through here, so a flag
//! means the same in every command.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use provdb_index::Embed;
use provdb_inference::model_files;

use crate::error::Result;
use crate::search::SentenceEmbedder;

/// The sentence embedder in `dir` (which must load), else the default embedder when its
/// folder holds a model; `None` when no directory was named and the default is absent.
pub fn load_embedder(dir: Option<&Path>) -> Result<Option<Arc<dyn Embed>>> {
    let dir = match dir {
        Some(dir) => dir.to_path_buf(),
        None => {
            let default = model_files::default_embedder_dir();
            if !default.join("config.json").is_file() {
                return Ok(None);
            }
            default
        }
    };
    Ok(Some(Arc::new(SentenceEmbedder::load(&dir)?)))
}

/// The generator's file or folder: `path` when named, else the default GGUF file.
pub fn generator_path(path: Option<&Path>) -> PathBuf {
    path.map_or_else(model_files::default_generator_path, Path::to_path_buf)
}

/// The name answers record for the generator at `path` (its file or folder name), the name
/// fee policies of a model are keyed by.
pub fn generator_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(|| "model".into(), |n| n.to_string_lossy().into_owned())
}
