//! `provdb chain deploy|sync|status|claim`: the chain crate's operations over this data
//! directory, on a single-threaded tokio runtime. Keys come from a file or the environment
//! (`chain_key`), never from the command line.

use std::path::Path;
use std::time::Duration;

use clap::{Args, Subcommand};
use provdb::{Address, Db};
use provdb_chain::RetryPolicy;

use crate::commands::chain_key::{ClaimKeyArgs, OperatorKeyArgs};
use crate::output::{print_json, print_table};

/// `provdb chain`.
#[derive(Debug, Subcommand)]
pub(crate) enum ChainCommand {
    /// Deploy ProvenanceRegistry and AttributionDistributor; their addresses go to
    /// DATA/chain.json. The key's account becomes the operator. JSON: chain_id, operator,
    /// distributor, registry, deploy_block, gas_used.
    Deploy {
        /// JSON-RPC endpoint.
        #[arg(long, env = "PROVDB_RPC")]
        rpc: String,
        #[command(flatten)]
        key: OperatorKeyArgs,
        /// Deploy new contracts even when DATA/chain.json records some.
        #[arg(long)]
        force: bool,
    },
    /// Post every closed epoch (funded with its new total) and anchor every ingest batch the
    /// chain does not have yet, in order. Reads the chain first: safe to rerun at any time.
    /// JSON: epochs_posted, datanets_registered, batches_anchored, chain_last_epoch,
    /// chain_last_sequence.
    Sync {
        #[command(flatten)]
        key: OperatorKeyArgs,
        #[command(flatten)]
        rpc: ChainRpcArgs,
    },
    /// Local epochs and ingest batches against the chain's.
    Status {
        #[command(flatten)]
        rpc: ChainRpcArgs,
    },
    /// Claim what an account is owed by the last epoch on chain (paid to that account). JSON:
    /// epoch, account, cumulative_wei, paid_wei, proof, tx, gas_used.
    Claim {
        /// The account paid.
        address: Address,
        /// The key of the account that sends (and pays gas for) the claim.
        #[command(flatten)]
        key: ClaimKeyArgs,
        #[command(flatten)]
        rpc: ChainRpcArgs,
    },
}

/// Options of every chain command that talks to the node.
#[derive(Debug, Args)]
pub(crate) struct ChainRpcArgs {
    /// JSON-RPC endpoint (default: the one recorded at deploy).
    #[arg(long, env = "PROVDB_RPC")]
    rpc: Option<String>,
    /// Attempts per step before giving up on an unreachable or slow node.
    #[arg(long, default_value_t = 5)]
    attempts: u32,
    /// Seconds one attempt (a call, or a transaction until its receipt) may take.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
}

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

pub(crate) fn run(data: &Path, json: bool, command: ChainCommand) -> anyhow::Result<()> {
    let rt = runtime()?;
    match command {
        ChainCommand::Deploy { rpc, key, force } => {
            let key = key.load()?;
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
        ChainCommand::Sync { key, rpc } => {
            let key = key.load()?;
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
        ChainCommand::Status { rpc } => {
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
        ChainCommand::Claim { address, key, rpc } => {
            let key = key.load()?;
            let db = Db::open(data)?;
            let report = rt.block_on(provdb_chain::claim(
                db.store(),
                data,
                address,
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

/// The stored adapters that have an owner, as the registry records them; an adapter trained
/// on a private Datanet stays off chain, as the Datanet does (its training root commits to
/// private records).
fn owned_adapters(db: &Db) -> anyhow::Result<Vec<provdb_chain::AdapterRecord>> {
    let mut records = Vec::new();
    for info in db.adapter_store().list()? {
        let Some(owner) = &info.owner else { continue };
        let private = |name: &str| {
            db.store()
                .datanet(name)
                .is_ok_and(|d| d.visibility == provdb::Visibility::Private)
        };
        if info.training.as_ref().is_some_and(|t| private(&t.datanet)) {
            continue;
        }
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
