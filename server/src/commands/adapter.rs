//! `provdb adapter add|list|remove|random`: the data directory's LoRA adapter store.

use std::path::PathBuf;

use provdb::inference::llama::LlamaModel;
use provdb::inference::lora::random::{self, RandomAdapter};
use provdb::inference::lora::{AdapterInfo, MODULES};
use provdb::inference::model_files;

use crate::cli::AdapterCommand;
use crate::output::{UserError, print_json, print_table};

pub(crate) fn run(data: &std::path::Path, command: AdapterCommand) -> anyhow::Result<()> {
    let store = provdb::adapter_store_at(data);
    match command {
        AdapterCommand::Add {
            path,
            owner,
            model,
            json,
        } => {
            let model = LlamaModel::load(&model_path(model))?;
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
        AdapterCommand::List { json } => {
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
            model,
        } => {
            let model = LlamaModel::load(&model_path(model))?;
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

fn model_path(model: Option<PathBuf>) -> PathBuf {
    model.unwrap_or_else(model_files::default_generator_path)
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
