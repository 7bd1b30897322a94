//! Option groups more than one command takes, flattened into each command's arguments
//! (`#[command(flatten)]`), and the closed choices they share as clap `ValueEnum`s that map
//! into the library's types (the libraries do not depend on clap).
//!
//! Invariant: a flag is spelled and read the same in every command that has it; the values a
//! user may type are checked by clap before any command opens the database or loads a model.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use clap::{Args, ValueEnum};
use provdb::index::Embed;
use provdb::inference::model_files;
use provdb::{Address, Caller, Fusion, SearchMode, Status};

/// The data directory, for every command.
#[derive(Debug, Args)]
pub(crate) struct DataDirArgs {
    /// Data directory.
    #[arg(
        long,
        global = true,
        env = "PROVDB_DATA",
        default_value = "./provdb-data"
    )]
    pub(crate) data: PathBuf,
}

/// The output format, for every command.
#[derive(Clone, Copy, Debug, Args)]
pub(crate) struct OutputArgs {
    /// Print one JSON document instead of text (commands that print a result; `sql` takes
    /// it as `--format json`).
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

/// The generator model, spelled `--model`.
#[derive(Debug, Args)]
pub(crate) struct GeneratorArgs {
    /// Generator model (GGUF file or safetensors folder; default: SmolLM2-135M-Instruct Q4_1
    /// from scripts/fetch-models.sh, in $PROVDB_MODELS).
    #[arg(long = "model")]
    pub(crate) model: Option<PathBuf>,
}

impl GeneratorArgs {
    /// The named model, else the default one.
    pub(crate) fn path(&self) -> PathBuf {
        provdb::models::generator_path(self.model.as_deref())
    }
}

/// The sentence embedder, spelled `--model` (commands that load no generator).
#[derive(Debug, Args)]
pub(crate) struct EmbedderArgs {
    /// Embedder model directory (default: $PROVDB_MODELS/all-minilm-l6-v2, filled by
    /// scripts/fetch-models.sh).
    #[arg(long = "model")]
    pub(crate) model: Option<PathBuf>,
}

impl EmbedderArgs {
    /// The named directory, else the default one.
    pub(crate) fn dir(&self) -> PathBuf {
        self.model
            .clone()
            .unwrap_or_else(model_files::default_embedder_dir)
    }

    /// The named embedder (which must load), else the default one when it is there.
    pub(crate) fn load(&self) -> anyhow::Result<Option<Arc<dyn Embed>>> {
        Ok(provdb::models::load_embedder(self.model.as_deref())?)
    }
}

/// Every model of a command that answers questions: the generator (`--model`), the embedder
/// (`--embedder`) and the LoRA adapter cache.
#[derive(Debug, Args)]
pub(crate) struct ServingModelArgs {
    #[command(flatten)]
    pub(crate) generator: GeneratorArgs,
    /// Embedder model directory (default: $PROVDB_MODELS/all-minilm-l6-v2 when it is there).
    #[arg(long)]
    pub(crate) embedder: Option<PathBuf>,
    /// Bytes of LoRA adapters kept in memory.
    #[arg(long, default_value_t = provdb::DEFAULT_ADAPTER_CACHE_BYTES)]
    pub(crate) adapter_cache_bytes: usize,
}

impl ServingModelArgs {
    /// The named embedder (which must load), else the default one when it is there.
    pub(crate) fn load_embedder(&self) -> anyhow::Result<Option<Arc<dyn Embed>>> {
        Ok(provdb::models::load_embedder(self.embedder.as_deref())?)
    }
}

/// Whom a command reads for, spelled `--as`.
#[derive(Debug, Args)]
pub(crate) struct CallerArgs {
    /// Act as this address: private Datanets it owns or holds a grant on become readable.
    #[arg(long = "as", value_name = "ADDRESS")]
    pub(crate) as_address: Option<Address>,
}

impl CallerArgs {
    /// The caller, anonymous without `--as`.
    pub(crate) fn caller(&self) -> Caller {
        self.as_address
            .map_or_else(Caller::anonymous, Caller::address)
    }
}

/// LoRA adapters a generation composes, spelled `--adapter ID[:WEIGHT]`.
#[derive(Debug, Args)]
pub(crate) struct AdapterMixArgs {
    /// LoRA adapter ID[:WEIGHT] from the data directory's store, an id or a unique prefix,
    /// weight 1 when omitted (repeat to compose; see `provdb adapter list`).
    #[arg(long = "adapter", value_name = "ID[:WEIGHT]")]
    pub(crate) adapters: Vec<AdapterSpec>,
}

impl AdapterMixArgs {
    /// The specs as the library takes them.
    pub(crate) fn specs(&self) -> Vec<String> {
        self.adapters.iter().map(|a| a.0.clone()).collect()
    }
}

/// One `ID[:WEIGHT]` whose weight clap has checked is a number; kept as typed, since the
/// adapter store resolves the id (a prefix) when the mix is built.
#[derive(Clone, Debug)]
pub(crate) struct AdapterSpec(String);

impl FromStr for AdapterSpec {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Some((_, weight)) = text.rsplit_once(':')
            && weight.parse::<f32>().is_err()
        {
            return Err("the weight after ':' must be a number".into());
        }
        Ok(Self(text.to_string()))
    }
}

/// Search modes (`--mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum SearchModeArg {
    /// BM25 only.
    Bm25,
    /// Vectors only.
    Vector,
    /// Both, fused.
    Hybrid,
}

impl From<SearchModeArg> for SearchMode {
    fn from(mode: SearchModeArg) -> Self {
        match mode {
            SearchModeArg::Bm25 => Self::Bm25,
            SearchModeArg::Vector => Self::Vector,
            SearchModeArg::Hybrid => Self::Hybrid,
        }
    }
}

/// Fusions of hybrid search (`--fusion`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum FusionArg {
    /// Weighted sum of min-max-normalised scores.
    #[value(alias = "weighted_sum")]
    Weighted,
    /// Reciprocal rank fusion.
    Rrf,
}

impl From<FusionArg> for Fusion {
    fn from(fusion: FusionArg) -> Self {
        match fusion {
            FusionArg::Weighted => Self::WeightedSum,
            FusionArg::Rrf => Self::Rrf,
        }
    }
}

impl FusionArg {
    /// Its name on the command line.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Weighted => "weighted",
            Self::Rrf => "rrf",
        }
    }
}

/// Curation statuses (`--status`, `provdb record status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum StatusArg {
    /// Waiting for a curator.
    Pending,
    /// Accepted.
    Approved,
    /// Refused by a curator.
    Rejected,
    /// Found bad after approval.
    Slashed,
    /// Removed by a tombstone version.
    Tombstoned,
}

impl From<StatusArg> for Status {
    fn from(status: StatusArg) -> Self {
        match status {
            StatusArg::Pending => Self::Pending,
            StatusArg::Approved => Self::Approved,
            StatusArg::Rejected => Self::Rejected,
            StatusArg::Slashed => Self::Slashed,
            StatusArg::Tombstoned => Self::Tombstoned,
        }
    }
}
