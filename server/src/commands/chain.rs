//! `provdb chain deploy|sync|status|claim`: the chain crate's operations over this data
//! directory, on a single-threaded tokio runtime.

use std::path::Path;
use std::time::Duration;

use provdb::{Address, Db};
use provdb_chain::RetryPolicy;

use crate::cli::{ChainCommand, ChainRpcArgs};
use crate::output::{parse_arg, print_json, print_table};

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn retry(args: &ChainRpcArgs) -> RetryPolicy {
    RetryPolicy {
        attempts: args.attempts,
        attempt_timeout: Duration::from_secs(args.timeout.max(1)),
        ..RetryPolicy::default()
    }
}

pub(crate) fn run(data: &Path, command: ChainCommand) -> anyhow::Result<()> {
    let rt = runtime()?;
    match command {
        ChainCommand::Deploy {
            rpc,
            key,
            force,
            json,
        } => {
            // Deploy needs the data directory to exist as a database (it records there).
            drop(Db::open(data)?);
            let report = rt.block_on(provdb_chain::deploy(
                data,
                &rpc,
                &key,
                force,
                RetryPolicy::default(),
            ))?;
            if json {
                return print_json(&report);
            }
            println!(
                "deployed on chain {} by {} (block {}, {} gas)\n  AttributionDistributor {}\n  ProvenanceRegistry     {}",
                report.chain_id,
                report.operator,
                report.deploy_block,
                report.gas_used,
                report.distributor,
                report.registry
            );
            Ok(())
        }
        ChainCommand::Sync { key, rpc, json } => {
            let db = Db::open(data)?;
            let adapters = owned_adapters(&db)?;
            let report = rt.block_on(provdb_chain::sync(
                db.store(),
                data,
                &key,
                rpc.rpc.as_deref(),
                retry(&rpc),
                &adapters,
            ))?;
            if json {
                return print_json(&report);
            }
            for e in &report.epochs_posted {
                println!(
                    "posted epoch {} (root {}, total {} wei, funded {} wei) in {} ({} gas)",
                    e.epoch, e.root, e.total_wei, e.funded_wei, e.tx, e.gas_used
                );
            }
            for id in &report.datanets_registered {
                println!("registered Datanet {id}");
            }
            for b in &report.batches_anchored {
                println!(
                    "anchored batch {} of Datanet {} ({} records, root {}) in {}",
                    b.sequence, b.datanet_id, b.records, b.records_root, b.tx
                );
            }
            for a in &report.adapters_registered {
                println!("registered adapter {} of {} in {}", a.id, a.owner, a.tx);
            }
            println!(
                "chain is at epoch {} and sequence {}",
                report.chain_last_epoch, report.chain_last_sequence
            );
            Ok(())
        }
        ChainCommand::Status { rpc, json } => {
            let db = Db::open(data)?;
            let report = rt.block_on(provdb_chain::status(
                db.store(),
                data,
                rpc.rpc.as_deref(),
                retry(&rpc),
            ))?;
            if json {
                return print_json(&report);
            }
            println!(
                "chain {} via {}: distributor {} (balance {} wei), registry {}",
                report.chain_id,
                report.rpc_url,
                report.distributor,
                report.distributor_balance_wei,
                report.registry
            );
            println!(
                "epochs: {} closed here, {} on chain; ingest batches: {} here, {} not anchored (chain at sequence {})",
                report.local_epochs,
                report.chain_last_epoch,
                report.local_batches,
                report.pending_batches,
                report.chain_last_sequence
            );
            let rows: Vec<Vec<String>> = report
                .epochs
                .iter()
                .map(|e| {
                    vec![
                        e.epoch.to_string(),
                        e.state.to_string(),
                        e.total_wei.clone(),
                        e.local_root.clone(),
                        e.tx.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            print_table(&["epoch", "state", "total_wei", "root", "tx"], &rows);
            Ok(())
        }
        ChainCommand::Claim {
            address,
            key,
            rpc,
            json,
        } => {
            let account: Address = parse_arg(&address, "address")?;
            let db = Db::open(data)?;
            let report = rt.block_on(provdb_chain::claim(
                db.store(),
                data,
                account,
                &key,
                rpc.rpc.as_deref(),
                retry(&rpc),
            ))?;
            if json {
                return print_json(&report);
            }
            println!(
                "paid {} wei to {} (cumulative {} wei by epoch {}) in {} ({} gas)",
                report.paid_wei,
                report.account,
                report.cumulative_wei,
                report.epoch,
                report.tx,
                report.gas_used
            );
            Ok(())
        }
    }
}

/// The stored adapters that have an owner, as the registry records them.
fn owned_adapters(db: &Db) -> anyhow::Result<Vec<provdb_chain::AdapterRecord>> {
    let mut records = Vec::new();
    for info in db.adapter_store().list()? {
        let Some(owner) = &info.owner else { continue };
        let mut record = provdb_chain::AdapterRecord {
            id: [0; 32],
            owner: [0; 20],
            base_model: [0; 32],
            training_root: [0; 32],
        };
        if let Some(training) = &info.training {
            hex::decode_to_slice(
                training.records_root.trim_start_matches("0x"),
                &mut record.training_root,
            )?;
        }
        hex::decode_to_slice(info.id.trim_start_matches("0x"), &mut record.id)?;
        hex::decode_to_slice(owner.trim_start_matches("0x"), &mut record.owner)?;
        hex::decode_to_slice(
            info.base_model.trim_start_matches("0x"),
            &mut record.base_model,
        )?;
        records.push(record);
    }
    Ok(records)
}
