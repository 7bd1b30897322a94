//! `provdb adapter add|list|remove|random`: the data directory's LoRA adapter store.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use provdb::inference::llama::LlamaModel;
use provdb::inference::lora::random::{self, RandomAdapter};
use provdb::inference::lora::{AdapterInfo, MODULES};

use crate::cli::options::GeneratorArgs;
use crate::output::{UserError, print_json, print_table};

/// `provdb adapter`.
#[derive(Debug, Subcommand)]
pub(crate) enum AdapterCommand {
    /// Add a PEFT LoRA folder, or a folder of them, checked against the base model.
    Add {
        /// The folder.
        path: PathBuf,
        /// The owner's address (0x and 40 hex digits; the adapter store checks it).
        #[arg(long)]
        owner: Option<String>,
        #[command(flatten)]
        base: GeneratorArgs,
    },
    /// List the stored adapters.
    List,
    /// Remove an adapter (an id or a unique prefix).
    Remove {
        /// The adapter.
        id: String,
    },
    /// Write PEFT folders with random weights for a base model (tests, benchmarks, demos).
    Random {
        /// Folder to write them in (`adapter-0000`, `adapter-0001`, ...).
        out: PathBuf,
        /// How many.
        #[arg(long, default_value_t = 1)]
        count: usize,
        /// Rank.
        #[arg(long, default_value_t = 16)]
        rank: usize,
        /// Target modules, comma-separated PEFT names (default: every linear layer).
        #[arg(long, value_delimiter = ',')]
        targets: Vec<String>,
        /// Store bf16 instead of f32.
        #[arg(long)]
        bf16: bool,
        /// First seed (adapter i uses seed + i).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[command(flatten)]
        base: GeneratorArgs,
    },
}

pub(crate) fn run(data: &Path, json: bool, command: AdapterCommand) -> anyhow::Result<()> {
    let store = provdb::adapter_store_at(data);
    match command {
        AdapterCommand::Add { path, owner, base } => {
            let model = LlamaModel::load(&base.path())?;
            let added = store.add_all(&path, owner.as_deref(), &model)?;
            if json {
                return print_json(&added);
            }
            for info in &added {
                println!(
                    "added {} (rank {}, {})",
                    info.id,
                    info.rank,
                    info.targets.join(",")
                );
            }
        }
        AdapterCommand::List => {
            let all = store.list()?;
            if json {
                return print_json(&all);
            }
            print_list(&all);
        }
        AdapterCommand::Remove { id } => {
            let id = store.resolve(&id)?;
            let info = store.remove(id)?;
            println!("removed {}", info.id);
        }
        AdapterCommand::Random {
            out,
            count,
            rank,
            targets,
            bf16,
            seed,
            base,
        } => {
            let model = LlamaModel::load(&base.path())?;
            let targets: Vec<&'static str> = if targets.is_empty() {
                MODULES.to_vec()
            } else {
                targets
                    .iter()
                    .map(|t| {
                        MODULES.iter().copied().find(|m| m == t).ok_or_else(|| {
                            UserError(format!(
                                "unknown target '{t}' (one of {})",
                                MODULES.join(", ")
                            ))
                        })
                    })
                    .collect::<Result<_, _>>()?
            };
            for i in 0..count {
                let spec = RandomAdapter {
                    targets: targets.clone(),
                    bf16,
                    ..RandomAdapter::all_linear(rank, seed + i as u64)
                };
                random::write(&out.join(format!("adapter-{i:04}")), model.config(), &spec)?;
            }
            println!("wrote {count} adapters in {}", out.display());
        }
    }
    Ok(())
}

fn print_list(all: &[AdapterInfo]) {
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|a| {
            vec![
                a.id.clone(),
                a.owner.clone().unwrap_or_else(|| "-".into()),
                a.rank.to_string(),
                a.targets.join(","),
                format!("{:.1} MB", a.memory_bytes as f64 / 1e6),
                a.base_model[..18].to_string(),
            ]
        })
        .collect();
    print_table(
        &["id", "owner", "rank", "targets", "memory", "base model"],
        &rows,
    );
}
