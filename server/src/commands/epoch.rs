//! `provdb epoch close|list|proof`.

use std::path::Path;

use provdb::storage::{Epoch, merkle_leaf_hash};
use provdb::{Address, Db};
use serde::Serialize;

use crate::cli::EpochCommand;
use crate::output::{UserError, parse_arg, print_json, print_table};

fn hex32(bytes: &[u8; 32]) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// An epoch as the CLI and the HTTP API print it.
#[derive(Serialize)]
pub(crate) struct EpochOutput {
    epoch: u64,
    root: String,
    accounts: u64,
    total_wei: String,
    first_seq: u64,
    end_seq: u64,
    ledger_head: String,
    closed_at_ms: i64,
}

impl From<&Epoch> for EpochOutput {
    fn from(e: &Epoch) -> Self {
        Self {
            epoch: e.epoch,
            root: hex32(&e.root),
            accounts: e.accounts,
            total_wei: e.total_wei.to_string(),
            first_seq: e.first_seq,
            end_seq: e.end_seq,
            ledger_head: hex32(&e.ledger_head),
            closed_at_ms: e.closed_at_ms,
        }
    }
}

/// An account's Merkle proof in an epoch, as a claim contract takes it.
#[derive(Serialize)]
pub(crate) struct ProofOutput {
    epoch: u64,
    account: String,
    cumulative_wei: String,
    leaf: String,
    proof: Vec<String>,
    root: String,
}

/// `account`'s proof in `epoch` (the last closed one when `None`).
pub(crate) fn epoch_proof(
    db: &Db,
    account: Address,
    epoch: Option<u64>,
) -> anyhow::Result<ProofOutput> {
    let number = match epoch {
        Some(n) => n,
        None => db
            .epochs()?
            .last()
            .map(|e| e.epoch)
            .ok_or_else(|| UserError("no epoch is closed yet".into()))?,
    };
    let tree = db.epoch_tree(number)?;
    let (Some(amount), Some(proof)) = (tree.amount(&account), tree.proof(&account)) else {
        return Err(UserError(format!("{account} has no balance in epoch {number}")).into());
    };
    Ok(ProofOutput {
        epoch: number,
        account: account.to_string(),
        cumulative_wei: amount.to_string(),
        leaf: hex32(&merkle_leaf_hash(&account, amount)),
        proof: proof.iter().map(hex32).collect(),
        root: hex32(&tree.root()),
    })
}

pub(crate) fn run(data: &Path, command: EpochCommand) -> anyhow::Result<()> {
    let db = Db::open(data)?;
    match command {
        EpochCommand::Close { json } => {
            let epoch = EpochOutput::from(&db.close_epoch()?);
            if json {
                return print_json(&epoch);
            }
            println!(
                "closed epoch {}: entries {}..{}, {} accounts, {} wei in all, root {}",
                epoch.epoch,
                epoch.first_seq,
                epoch.end_seq,
                epoch.accounts,
                epoch.total_wei,
                epoch.root
            );
            Ok(())
        }
        EpochCommand::List { json } => {
            let epochs: Vec<EpochOutput> = db.epochs()?.iter().map(EpochOutput::from).collect();
            if json {
                return print_json(&epochs);
            }
            let rows: Vec<Vec<String>> = epochs
                .iter()
                .map(|e| {
                    vec![
                        e.epoch.to_string(),
                        format!("{}..{}", e.first_seq, e.end_seq),
                        e.accounts.to_string(),
                        e.total_wei.clone(),
                        e.root.clone(),
                    ]
                })
                .collect();
            print_table(
                &["epoch", "entries", "accounts", "total_wei", "root"],
                &rows,
            );
            Ok(())
        }
        EpochCommand::Proof {
            address,
            epoch,
            json,
        } => {
            let account: Address = parse_arg(&address, "address")?;
            let output = epoch_proof(&db, account, epoch)?;
            if json {
                return print_json(&output);
            }
            println!(
                "epoch {}: {} is owed {} wei in all\nleaf  {}\nroot  {}\nproof",
                output.epoch, output.account, output.cumulative_wei, output.leaf, output.root
            );
            for node in &output.proof {
                println!("  {node}");
            }
            Ok(())
        }
    }
}
