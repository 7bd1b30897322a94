//! `provdb chain deploy|deposit|fund|sync|status|verify|claim`: the chain crate's operations over
//! this data directory, on a single-threaded tokio runtime. Keys come from a file or the
//! environment (`chain_key`), never from the command line.

use std::path::Path;
use std::time::Duration;

use clap::{Args, Subcommand};
use provdb::{Address, Db};
use provdb_chain::RetryPolicy;

use crate::commands::ask::parse_wei;
use crate::commands::chain_key::{ClaimKeyArgs, DepositKeyArgs, OperatorKeyArgs};
use crate::commands::chain_verify;
use crate::output::{print_json, print_table};

/// `provdb chain`.
#[derive(Debug, Subcommand)]
pub(crate) enum ChainCommand {
    /// Deploy ProvenanceRegistry and AttributionDistributor; their addresses go to
    /// DATA/chain.json. The key's account becomes the operator. The distributor takes and pays
    /// ETH, or the ERC-20 named by --token (fixed for its life). JSON: chain_id, operator,
    /// distributor, registry, token, deploy_block, gas_used.
    Deploy {
        /// JSON-RPC endpoint.
        #[arg(long, env = "PROVDB_RPC")]
        rpc: String,
        #[command(flatten)]
        key: OperatorKeyArgs,
        /// The ERC-20 the distributor takes deposits in and pays claims in (default: ETH).
        #[arg(long, value_name = "ADDRESS")]
        token: Option<String>,
        /// Deploy new contracts even when DATA/chain.json records some.
        #[arg(long)]
        force: bool,
    },
    /// Deposit WEI (ETH, or the distributor's token in its smallest unit) from your own key
    /// for ACCOUNT, whose balance the operator's next `provdb chain sync` credits once the
    /// deposit has its confirmations. Sent exactly once, even when the node loses the answer.
    /// JSON: deposit_id, account, from, amount_wei, asset, approve_tx, tx, block, gas_used.
    Deposit {
        /// The account credited (it need not be the sender's).
        account: Address,
        /// The amount, in wei (or the token's smallest unit).
        #[arg(value_name = "WEI", value_parser = parse_wei)]
        amount: u128,
        /// The key of the account that pays.
        #[command(flatten)]
        key: DepositKeyArgs,
        #[command(flatten)]
        rpc: ChainRpcArgs,
    },
    /// Pay WEI into the distributor without crediting any account: the on-chain backing of
    /// credits given off chain (`provdb account credit`), which epochs pay out like any other.
    /// JSON: from, amount_wei, asset, approve_tx, tx, gas_used, total_deposited_wei.
    Fund {
        /// The amount, in wei (or the token's smallest unit).
        #[arg(value_name = "WEI", value_parser = parse_wei)]
        amount: u128,
        #[command(flatten)]
        key: OperatorKeyArgs,
        #[command(flatten)]
        rpc: ChainRpcArgs,
    },
    /// Credit new deposits (and token transfers sent straight to the distributor, to their
    /// senders), anchor every ingest batch and register every adapter the chain does not have
    /// yet, then post every closed epoch with its ledger head, in order. Reads the
    /// chain first: safe to rerun at any time. An epoch whose total exceeds what was paid in
    /// is not sent (the error names the shortfall; `provdb chain fund` covers it). JSON:
    /// transfers_credited, transfers_not_held, deposits_credited, chain_deposits, deposits_unconfirmed, chain_total_deposited_wei,
    /// epochs_posted, datanets_registered, batches_anchored, adapters_registered,
    /// chain_last_epoch, chain_last_sequence.
    Sync {
        #[command(flatten)]
        key: OperatorKeyArgs,
        #[command(flatten)]
        rpc: ChainRpcArgs,
        /// Blocks a deposit must be deep before it is credited (1: credited once mined). Set
        /// it to the chain's reorganisation depth: a credit is never taken back.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
        confirmations: u64,
    },
    /// Local epochs, ingest batches and credited deposits against the chain's, and the money
    /// the distributor took in and paid out.
    Status {
        #[command(flatten)]
        rpc: ChainRpcArgs,
    },
    /// Replay the ledger from its entries (hash chain, every epoch's head, root and total) and
    /// compare each epoch with the ledger head and root posted on chain: a ledger rewritten
    /// here, even whole, cannot match what earlier syncs posted. Exit 1 on any difference.
    /// JSON: entries, broken, chain_last_epoch, epochs (epoch, ledger_head, chain_ledger_head,
    /// root, chain_root, state), ok.
    Verify {
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
    pub(crate) rpc: Option<String>,
    /// Attempts per step before giving up on an unreachable or slow node.
    #[arg(long, default_value_t = 5)]
    attempts: u32,
    /// Seconds one attempt (a call, or a transaction until its receipt) may take.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

pub(crate) fn retry(args: &ChainRpcArgs) -> RetryPolicy {
    RetryPolicy {
        attempts: args.attempts,
        attempt_timeout: Duration::from_secs(args.timeout.max(1)),
        ..RetryPolicy::default()
    }
}

pub(crate) fn run(data: &Path, json: bool, command: ChainCommand) -> anyhow::Result<()> {
    let rt = runtime()?;
    match command {
        ChainCommand::Deploy {
            rpc,
            key,
            token,
            force,
        } => {
            let key = key.load()?;
            // Deploy needs the data directory to exist as a database (it records there).
            drop(Db::open(data)?);
            let report = rt.block_on(provdb_chain::deploy(
                data,
                &rpc,
                &key,
                token.as_deref(),
                force,
                RetryPolicy::default(),
            ))?;
            if json {
                return print_json(&report);
            }
            println!(
                "deployed on chain {} by {} (block {}, {} gas)\n  AttributionDistributor {} (pays {})\n  ProvenanceRegistry     {}",
                report.chain_id,
                report.operator,
                report.deploy_block,
                report.gas_used,
                report.distributor,
                report.token.as_deref().unwrap_or("ETH"),
                report.registry
            );
            Ok(())
        }
        ChainCommand::Deposit {
            account,
            amount,
            key,
            rpc,
        } => {
            let key = key.load()?;
            let report = rt.block_on(provdb_chain::deposit(
                data,
                account,
                amount,
                &key,
                rpc.rpc.as_deref(),
                retry(&rpc),
            ))?;
            if json {
                return print_json(&report);
            }
            println!(
                "deposit {}: {} wei ({}) from {} for {} in {} ({} gas); `provdb chain sync` credits it",
                report.deposit_id,
                report.amount_wei,
                report.asset,
                report.from,
                report.account,
                report.tx,
                report.gas_used
            );
            Ok(())
        }
        ChainCommand::Fund { amount, key, rpc } => {
            let key = key.load()?;
            let report = rt.block_on(provdb_chain::fund(
                data,
                amount,
                &key,
                rpc.rpc.as_deref(),
                retry(&rpc),
            ))?;
            if json {
                return print_json(&report);
            }
            println!(
                "funded {} wei ({}) from {} in {} ({} gas); {} wei paid in on chain in all",
                report.amount_wei,
                report.asset,
                report.from,
                report.tx,
                report.gas_used,
                report.total_deposited_wei
            );
            Ok(())
        }
        ChainCommand::Sync {
            key,
            rpc,
            confirmations,
        } => {
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
                confirmations,
            ))?;
            if json {
                return print_json(&report);
            }
            for t in &report.transfers_credited {
                println!(
                    "credited a plain transfer of {} wei to its sender {} (tx {}, log {}) with {}",
                    t.amount_wei, t.from, t.transfer_tx, t.log_index, t.tx
                );
            }
            for t in &report.transfers_not_held {
                println!(
                    "left a plain transfer of {} wei from {} (tx {}, log {}): the distributor \
                     does not hold it outside its count",
                    t.amount_wei, t.from, t.transfer_tx, t.log_index
                );
            }
            for c in &report.deposits_credited {
                println!(
                    "credited deposit {} of {} wei to {} (from {}, block {}, {})",
                    c.deposit_id, c.amount_wei, c.account, c.from, c.block, c.tx
                );
            }
            if report.deposits_unconfirmed > 0 {
                println!(
                    "{} deposit(s) wait for {confirmations} confirmation(s)",
                    report.deposits_unconfirmed
                );
            }
            for e in &report.epochs_posted {
                println!(
                    "posted epoch {} (root {}, total {} wei, ledger head {}) in {} ({} gas)",
                    e.epoch, e.root, e.total_wei, e.ledger_head, e.tx, e.gas_used
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
                "chain is at epoch {} and sequence {}; {} deposit(s) credited, {} wei paid in",
                report.chain_last_epoch,
                report.chain_last_sequence,
                report.chain_deposits,
                report.chain_total_deposited_wei
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
            let m = &report.deposits;
            println!(
                "deposits ({}): {} on chain, {} credited here ({} wei), {} not yet",
                m.asset,
                m.chain_deposits,
                m.credited_deposits,
                m.credited_wei,
                m.uncredited_deposits
            );
            println!(
                "money on chain: {} wei paid in, {} wei owed by the last epoch, {} wei claimed, {} wei held; payouts within deposits: {}",
                m.total_deposited_wei,
                m.total_owed_wei,
                m.total_claimed_wei,
                m.balance_wei,
                if m.payouts_within_deposits {
                    "yes"
                } else {
                    "NO"
                }
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
        ChainCommand::Verify { rpc } => chain_verify::run(data, json, &rpc),
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
