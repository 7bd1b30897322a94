//! `provdb epoch close|list|proof`.

use std::path::Path;

use clap::Subcommand;
use provdb::{Address, Db};

use crate::output::{print_json, print_table};
use crate::views::{EpochView, ProofView};

/// `provdb epoch`.
#[derive(Debug, Subcommand)]
pub(crate) enum EpochCommand {
    /// Close the entries since the last epoch; JSON: epoch, root, accounts, total_wei,
    /// first_seq, end_seq.
    Close,
    /// List the closed epochs.
    List,
    /// An account's cumulative balance and Merkle proof (OpenZeppelin StandardMerkleTree
    /// leaf `(address, uint256)`); JSON: epoch, account, cumulative_wei, leaf, proof, root.
    Proof {
        /// The account.
        address: Address,
        /// The epoch (default: the last).
        #[arg(long)]
        epoch: Option<u64>,
    },
}

pub(crate) fn run(data: &Path, json: bool, command: EpochCommand) -> anyhow::Result<()> {
    let db = Db::open(data)?;
    match command {
        EpochCommand::Close => {
            let epoch = EpochView::from(&db.close_epoch()?);
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
        EpochCommand::List => {
            let epochs: Vec<EpochView> = db.epochs()?.iter().map(EpochView::from).collect();
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
        EpochCommand::Proof { address, epoch } => {
            let output = ProofView::from(&db.epoch_proof(address, epoch)?);
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
