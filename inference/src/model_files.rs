//! Where models live: `$PROVDB_MODELS` (default `~/.cache/provdb/models`), filled by
//! `scripts/fetch-models.sh`, or any directory a user names.

use std::path::{Path, PathBuf};

use crate::error::{InferenceError, Result};

/// Folder of the sentence embedder inside the models directory.
pub const EMBEDDER_DIR: &str = "all-minilm-l6-v2";

/// The default generator: SmolLM2-135M-Instruct, GGUF Q4_1.
pub const GENERATOR_FILE: &str = "smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";

/// The default generator file.
pub fn default_generator_path() -> PathBuf {
    models_dir().join(GENERATOR_FILE)
}

/// The models directory: `$PROVDB_MODELS`, else `$HOME/.cache/provdb/models`.
pub fn models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PROVDB_MODELS") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache").join("provdb").join("models")
}

/// The default embedder directory.
pub fn default_embedder_dir() -> PathBuf {
    models_dir().join(EMBEDDER_DIR)
}

/// `dir/name`, which must exist.
pub(crate) fn required(dir: &Path, name: &str, what: &'static str) -> Result<PathBuf> {
    let path = dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(InferenceError::MissingFile { path, what })
    }
}

/// Reads a JSON file into `T`, naming the file on failure.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = fs_err::read_to_string(path).map_err(|e| InferenceError::BadModelFile {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    serde_json::from_str(&text).map_err(|e| InferenceError::BadModelFile {
        path: path.to_path_buf(),
        reason: format!("invalid JSON: {e}"),
    })
}

/// keccak256 over the bytes of `files`, in order (streamed, so a large model is not read into
/// memory at once).
pub(crate) fn keccak_of_files(files: &[PathBuf]) -> Result<[u8; 32]> {
    use keccak_asm::{Digest, Keccak256};
    use std::io::Read;
    let mut hasher = Keccak256::new();
    let mut buffer = vec![0u8; 1 << 20];
    for path in files {
        let bad = |e: std::io::Error| InferenceError::BadModelFile {
            path: path.clone(),
            reason: e.to_string(),
        };
        let mut file = fs_err::File::open(path).map_err(bad)?;
        loop {
            let read = file.read(&mut buffer).map_err(bad)?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
        }
    }
    Ok(hasher.finalize().into())
}
