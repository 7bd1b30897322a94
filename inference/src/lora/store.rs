//! [`AdapterStore`]: the directory source of adapters, content-addressed.
//!
//! Layout: `ROOT/<id as 64 hex digits>/` holds the adapter's two PEFT files exactly as added
//! and `provdb-adapter.json` ([`AdapterInfo`]: owner, base-model hash, rank, targets, sizes,
//! and for a trained adapter its training provenance, with the record ids it trained on in
//! `training-records.json`).
//! An id is keccak256 over, for `adapter_config.json` then `adapter_model.safetensors`: the
//! file name, a zero byte, the file's length as 8 big-endian bytes, and its bytes; anyone can
//! recompute it from the two files.
//!
//! Invariants: a folder named by an id holds exactly the files that hash to it, checked and
//! loaded once against the base model before it appears (it is written beside, then renamed
//! into place, so a crash or a refused adapter leaves nothing half-added). Removing renames
//! the folder away first, so a reader never sees a half-deleted adapter.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use keccak_asm::{Digest, Keccak256};
use serde::{Deserialize, Serialize};

use super::gradients::{GRADIENTS_FILE, GradientStore};
use super::peft::{self, CONFIG_FILE, WEIGHTS_FILE};
use super::provenance::{GradientStoreInfo, TRAINING_RECORDS_FILE, TrainingProvenance};
use super::{AdapterId, LoraAdapter};
use crate::error::{InferenceError, Result};
use crate::llama::LlamaModel;

const INFO_FILE: &str = "provdb-adapter.json";

/// What the store knows of an adapter.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AdapterInfo {
    /// Its id (`0x` + 64 hex digits).
    pub id: String,
    /// Who owns it (an EVM address, lower case), if given.
    pub owner: Option<String>,
    /// keccak256 of the base model's files (see [`LlamaModel::content_hash`]).
    pub base_model: String,
    /// Largest rank of its factors.
    pub rank: usize,
    /// Targeted modules.
    pub targets: Vec<String>,
    /// Bytes of its two files on disk.
    pub file_bytes: u64,
    /// Bytes of its factors once loaded.
    pub memory_bytes: usize,
    /// Where it was added from.
    pub source: String,
    /// When it was added (Unix seconds).
    pub added_at: u64,
    /// How it was trained, for an adapter the Model Factory made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training: Option<TrainingProvenance>,
}

/// A trained adapter's provenance and the record ids it trained on.
pub type Training<'a> = (&'a TrainingProvenance, &'a [String]);

/// The content-addressed folder of adapters.
#[derive(Clone, Debug)]
pub struct AdapterStore {
    root: PathBuf,
}

fn io_error(path: &Path, error: impl std::fmt::Display) -> InferenceError {
    InferenceError::BadModelFile {
        path: path.to_path_buf(),
        reason: error.to_string(),
    }
}

/// The id of the adapter whose two files hold `config` and `weights`.
pub fn adapter_id(config: &[u8], weights: &[u8]) -> AdapterId {
    let mut hasher = Keccak256::new();
    for (name, bytes) in [(CONFIG_FILE, config), (WEIGHTS_FILE, weights)] {
        hasher.update(name.as_bytes());
        hasher.update([0u8]);
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(bytes);
    }
    AdapterId(hasher.finalize().into())
}

/// Checks an owner address (`0x` + 40 hex digits) and lower-cases it.
fn owner_address(owner: &str) -> Result<String> {
    let digits = owner.strip_prefix("0x").unwrap_or_default();
    if digits.len() != 40 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(InferenceError::Invalid(format!(
            "owner '{owner}' is not an address (0x and 40 hex digits)"
        )));
    }
    Ok(format!("0x{}", digits.to_ascii_lowercase()))
}

impl AdapterStore {
    /// The store under `root` (created on first add).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Its folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn folder(&self, id: AdapterId) -> PathBuf {
        self.root.join(hex::encode(id.0))
    }

    /// Adds the PEFT folder `source` for `model`: checks it loads against the model, copies
    /// it in, records `owner`. Adding the same files again returns the existing entry (an
    /// owner other than the recorded one is refused).
    pub fn add(
        &self,
        source: &Path,
        owner: Option<&str>,
        model: &LlamaModel,
    ) -> Result<AdapterInfo> {
        self.add_with(source, owner, model, None)
    }

    /// [`AdapterStore::add`] for an adapter the Model Factory trained: records its provenance
    /// and the record ids it trained on.
    pub fn add_trained(
        &self,
        source: &Path,
        owner: Option<&str>,
        model: &LlamaModel,
        training: Training<'_>,
    ) -> Result<AdapterInfo> {
        self.add_with(source, owner, model, Some(training))
    }

    fn add_with(
        &self,
        source: &Path,
        owner: Option<&str>,
        model: &LlamaModel,
        training: Option<Training<'_>>,
    ) -> Result<AdapterInfo> {
        let owner = owner.map(owner_address).transpose()?;
        let read = |name: &str, what: &'static str| {
            fs_err::read(source.join(name)).map_err(|_| InferenceError::MissingFile {
                path: source.join(name),
                what,
            })
        };
        let config = read(
            CONFIG_FILE,
            "the adapter configuration (a PEFT LoRA folder)",
        )?;
        let weights = read(WEIGHTS_FILE, "the adapter weights")?;
        let id = adapter_id(&config, &weights);
        if let Ok(existing) = self.info(id) {
            if owner.is_some() && owner != existing.owner {
                return Err(InferenceError::Invalid(format!(
                    "adapter {id} is already stored with owner {}",
                    existing.owner.as_deref().unwrap_or("(none)")
                )));
            }
            return Ok(existing);
        }
        fs_err::create_dir_all(&self.root).map_err(|e| io_error(&self.root, e))?;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let staging = self.root.join(format!(
            ".adding-{}-{}-{}",
            hex::encode(&id.0[..8]),
            std::process::id(),
            nanos.as_nanos()
        ));
        let result = self.stage(
            &staging, id, &config, &weights, owner, source, model, training,
        );
        if result.is_err() {
            let _ = fs_err::remove_dir_all(&staging);
        }
        result
    }

    #[allow(clippy::too_many_arguments, reason = "one private step of add")]
    fn stage(
        &self,
        staging: &Path,
        id: AdapterId,
        config: &[u8],
        weights: &[u8],
        owner: Option<String>,
        source: &Path,
        model: &LlamaModel,
        training: Option<Training<'_>>,
    ) -> Result<AdapterInfo> {
        fs_err::create_dir_all(staging).map_err(|e| io_error(staging, e))?;
        if let Some((provenance, record_ids)) = training {
            let json = serde_json::to_vec(record_ids)
                .map_err(|e| InferenceError::Invalid(e.to_string()))?;
            write_synced(&staging.join(TRAINING_RECORDS_FILE), &json)?;
            if let Some(info) = &provenance.gradients {
                let bytes = checked_gradients(&source.join(GRADIENTS_FILE), info, provenance)?;
                write_synced(&staging.join(GRADIENTS_FILE), &bytes)?;
            }
        }
        for (name, bytes) in [(CONFIG_FILE, config), (WEIGHTS_FILE, weights)] {
            write_synced(&staging.join(name), bytes)?;
        }
        let adapter = peft::load(staging, model.config(), id)?;
        let info = AdapterInfo {
            id: id.to_string(),
            owner,
            base_model: format!("0x{}", hex::encode(model.content_hash()?)),
            rank: adapter.rank(),
            targets: adapter.targets().iter().map(|t| t.to_string()).collect(),
            file_bytes: (config.len() + weights.len()) as u64,
            memory_bytes: adapter.byte_size(),
            source: source.display().to_string(),
            added_at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs(),
            training: training.map(|(provenance, _)| provenance.clone()),
        };
        let json =
            serde_json::to_vec_pretty(&info).map_err(|e| InferenceError::Invalid(e.to_string()))?;
        write_synced(&staging.join(INFO_FILE), &json)?;
        let target = self.folder(id);
        match fs_err::rename(staging, &target) {
            Ok(()) => Ok(info),
            // Added meanwhile by someone else: theirs is the same content.
            Err(_) if target.is_dir() => {
                let _ = fs_err::remove_dir_all(staging);
                self.info(id)
            }
            Err(e) => Err(io_error(&target, e)),
        }
    }

    /// Adds `path`: one PEFT folder, or a folder of PEFT folders (each sub-folder with an
    /// `adapter_config.json`, in name order). Stops at the first refused adapter, keeping the
    /// ones added before it.
    pub fn add_all(
        &self,
        path: &Path,
        owner: Option<&str>,
        model: &LlamaModel,
    ) -> Result<Vec<AdapterInfo>> {
        if path.join(CONFIG_FILE).is_file() {
            return Ok(vec![self.add(path, owner, model)?]);
        }
        let entries = fs_err::read_dir(path).map_err(|_| InferenceError::MissingFile {
            path: path.to_path_buf(),
            what: "a PEFT LoRA folder or a folder of them",
        })?;
        let mut folders: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join(CONFIG_FILE).is_file())
            .collect();
        folders.sort();
        if folders.is_empty() {
            return Err(InferenceError::MissingFile {
                path: path.join(CONFIG_FILE),
                what: "a PEFT LoRA folder or a folder of them",
            });
        }
        folders.iter().map(|f| self.add(f, owner, model)).collect()
    }

    /// What the store records of `id`.
    pub fn info(&self, id: AdapterId) -> Result<AdapterInfo> {
        let path = self.folder(id).join(INFO_FILE);
        let text = fs_err::read(&path).map_err(|_| {
            InferenceError::Invalid(format!("no adapter {id} in {}", self.root.display()))
        })?;
        serde_json::from_slice(&text).map_err(|e| io_error(&path, e))
    }

    /// The record ids a trained adapter trained on (empty for an adapter added from outside).
    pub fn training_records(&self, id: AdapterId) -> Result<Vec<String>> {
        let path = self.folder(id).join(TRAINING_RECORDS_FILE);
        match fs_err::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| io_error(&path, e)),
            Err(_) if self.folder(id).is_dir() => Ok(Vec::new()),
            Err(e) => Err(io_error(&path, e)),
        }
    }

    /// The gradient store of a trained adapter paid by influence (None for one without), read
    /// and checked whole: its checksum, its keccak against the one its provenance recorded at
    /// training, and its record-id root against the provenance's.
    pub fn gradients(&self, id: AdapterId) -> Result<Option<GradientStore>> {
        let info = self.info(id)?;
        let Some(provenance) = &info.training else {
            return Ok(None);
        };
        let Some(store) = &provenance.gradients else {
            return Ok(None);
        };
        let path = self.folder(id).join(GRADIENTS_FILE);
        let bytes = checked_gradients(&path, store, provenance)?;
        GradientStore::from_bytes(&path, &bytes).map(Some)
    }

    /// Every adapter, oldest first.
    pub fn list(&self) -> Result<Vec<AdapterInfo>> {
        let Ok(entries) = fs_err::read_dir(&self.root) else {
            return Ok(Vec::new());
        };
        let mut all = Vec::new();
        for entry in entries.filter_map(|e| e.ok()) {
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(|n| AdapterId::parse(n).ok()) else {
                continue; // staging or removed folders
            };
            all.push(self.info(id)?);
        }
        all.sort_by(|a, b| (a.added_at, &a.id).cmp(&(b.added_at, &b.id)));
        Ok(all)
    }

    /// The id a user typed: a whole id, or a unique prefix of at least 6 hex digits.
    pub fn resolve(&self, text: &str) -> Result<AdapterId> {
        if let Ok(id) = AdapterId::parse(text) {
            return Ok(id);
        }
        let prefix = text.strip_prefix("0x").unwrap_or(text).to_ascii_lowercase();
        if prefix.len() < 6 || !prefix.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(InferenceError::Invalid(format!(
                "'{text}' is not an adapter id or a prefix of one (at least 6 hex digits)"
            )));
        }
        let matches: Vec<AdapterId> = fs_err::read_dir(&self.root)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok()?.file_name().to_str().map(str::to_string))
                    .filter(|n| n.starts_with(&prefix))
                    .filter_map(|n| AdapterId::parse(&n).ok())
                    .collect()
            })
            .unwrap_or_default();
        match matches.as_slice() {
            [one] => Ok(*one),
            [] => Err(InferenceError::Invalid(format!(
                "no adapter {text} (see `provdb adapter list`)"
            ))),
            _ => Err(InferenceError::Invalid(format!(
                "'{text}' names {} adapters; give more digits",
                matches.len()
            ))),
        }
    }

    /// Removes `id`; requests already holding it keep their loaded copy.
    pub fn remove(&self, id: AdapterId) -> Result<AdapterInfo> {
        let info = self.info(id)?;
        let folder = self.folder(id);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let away = self.root.join(format!(
            ".removing-{}-{}",
            hex::encode(id.0),
            nanos.as_nanos()
        ));
        fs_err::rename(&folder, &away).map_err(|e| io_error(&folder, e))?;
        fs_err::remove_dir_all(&away).map_err(|e| io_error(&away, e))?;
        Ok(info)
    }

    /// Loads `id` for `model`, refusing an adapter made for another base model.
    pub fn load(&self, id: AdapterId, model: &LlamaModel) -> Result<LoraAdapter> {
        self.load_described(id, &self.info(id)?, model)
    }

    /// [`AdapterStore::load`] with the adapter's record already read.
    pub(crate) fn load_described(
        &self,
        id: AdapterId,
        info: &AdapterInfo,
        model: &LlamaModel,
    ) -> Result<LoraAdapter> {
        let base = format!("0x{}", hex::encode(model.content_hash()?));
        if info.base_model != base {
            return Err(InferenceError::Invalid(format!(
                "adapter {id} was made for base model {}, not {} ({base})",
                info.base_model,
                model.path().display()
            )));
        }
        peft::load(&self.folder(id), model.config(), id)
    }
}

/// The bytes of the gradient store at `path`, checked against `info` and `provenance`.
fn checked_gradients(
    path: &Path,
    info: &GradientStoreInfo,
    provenance: &TrainingProvenance,
) -> Result<Vec<u8>> {
    let bytes = fs_err::read(path).map_err(|_| InferenceError::MissingFile {
        path: path.to_path_buf(),
        what: "the adapter's gradient store",
    })?;
    let keccak = format!("0x{}", hex::encode(Keccak256::digest(&bytes)));
    if keccak != info.file_keccak {
        return Err(InferenceError::Invalid(format!(
            "the gradient store {} is not the one trained (keccak {keccak}, {} recorded)",
            path.display(),
            info.file_keccak
        )));
    }
    let store = GradientStore::from_bytes(path, &bytes)?;
    if store.header.records_root != provenance.records_root {
        return Err(InferenceError::Invalid(format!(
            "the gradient store {} is of records {}, the adapter trained on {}",
            path.display(),
            store.header.records_root,
            provenance.records_root
        )));
    }
    Ok(bytes)
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut file = fs_err::File::create(path).map_err(|e| io_error(path, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| io_error(path, e))
}
