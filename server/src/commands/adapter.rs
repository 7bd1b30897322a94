//! `provdb adapter add|list|show|publish|remove|random`: the data directory's LoRA adapter
//! store, and the recorded act by which a training Datanet's owner makes a trained adapter
//! public or private again.

use std::path::{Path, PathBuf};

use clap::{ArgGroup, Subcommand};
use provdb::inference::llama::LlamaModel;
use provdb::inference::lora::random::{self, RandomAdapter};
use provdb::inference::lora::{AdapterInfo, MODULES};
use provdb::{Address, Caller, Db};

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
    /// Show an adapter with its visibility acts (who made it public or private, and when).
    Show {
        /// The adapter (an id or a unique prefix).
        id: String,
    },
    /// Make a trained adapter public (every key sees and runs it, without its training
    /// details) or private again (only readers of its training Datanet see it); only the
    /// Datanet's owner may, and the act is recorded with who and when.
    #[command(group(ArgGroup::new("visibility").required(true).args(["public", "private"])))]
    Publish {
        /// The adapter (an id or a unique prefix).
        id: String,
        /// Make it public.
        #[arg(long)]
        public: bool,
        /// Make it private again.
        #[arg(long)]
        private: bool,
        /// The training Datanet's owner, who acts.
        #[arg(long = "as", value_name = "ADDRESS")]
        caller: Address,
    },
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
        AdapterCommand::Show { id } => {
            let db = Db::open(data)?;
            let id = store.resolve(&id)?;
            let info = store.info(id)?;
            let acts = db.store().adapter_acts(&id.0)?;
            if json {
                let acts: Vec<serde_json::Value> = acts.iter().map(act_json).collect();
                return print_json(&serde_json::json!({ "adapter": info, "acts": acts }));
            }
            print_list(std::slice::from_ref(&info));
            let public = acts.last().is_some_and(|a| a.public);
            println!("{}", if public { "public" } else { "private" });
            for act in &acts {
                let made = if act.public { "public" } else { "private" };
                println!(
                    "  #{} at {} ms: {} made it {made}",
                    act.seq, act.at_ms, act.by
                );
            }
        }
        AdapterCommand::Publish {
            id,
            public,
            private: _,
            caller,
        } => {
            let db = Db::open(data)?;
            let act = db.set_adapter_public(&Caller::address(caller), &id, public)?;
            if json {
                return print_json(&act_json(&act));
            }
            let made = if act.public { "public" } else { "private" };
            println!("adapter {id} made {made} by {} (act #{})", act.by, act.seq);
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

/// A visibility act as JSON (the address as text).
fn act_json(act: &provdb::storage::AdapterAct) -> serde_json::Value {
    serde_json::json!({"seq": act.seq, "at_ms": act.at_ms, "by": act.by.to_string(),
                       "public": act.public})
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
