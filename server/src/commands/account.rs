//! `provdb account show|credit|refund`: callers' prepaid accounts. Credits are an admin's (the
//! local operator without `--as`), each a hash-chained ledger entry with its reason; a refund
//! moves an account's whole balance into a payout of role `refund`, claimed after the next
//! epoch.

use std::path::Path;

use clap::{Args, Subcommand};
use provdb::{Address, Db};

use crate::cli::options::CallerArgs;
use crate::commands::ask::parse_wei;
use crate::commands::price::acting;
use crate::output::{print_json, print_table};
use crate::views::AccountView;

/// `provdb account`.
#[derive(Debug, Subcommand)]
pub(crate) enum AccountCommand {
    /// An account's balance, credits and charges (the operator's without ADDRESS).
    Show {
        /// The account.
        address: Option<Address>,
    },
    /// Credit an account off-chain (an admin: a card payment, say), with a reason.
    Credit(CreditArgs),
    /// Refund an account's whole balance as a payout claimed after the next epoch.
    Refund {
        /// The account.
        address: Address,
        #[command(flatten)]
        caller: CallerArgs,
    },
}

/// `provdb account credit`.
#[derive(Debug, Args)]
pub(crate) struct CreditArgs {
    /// The account.
    address: Address,
    /// How much, in wei.
    #[arg(value_parser = parse_wei)]
    wei: u128,
    /// Why (recorded in the ledger entry).
    #[arg(long)]
    reason: String,
    #[command(flatten)]
    caller: CallerArgs,
}

pub(crate) fn run(data: &Path, json: bool, command: AccountCommand) -> anyhow::Result<()> {
    let db = Db::open(data)?;
    let address = match command {
        AccountCommand::Show { address } => match address {
            Some(address) => address,
            None => db.operator()?,
        },
        AccountCommand::Credit(args) => {
            let caller = acting(&db, &args.caller)?;
            let entry = db.credit(&caller, args.address, args.wei, &args.reason)?;
            if !json {
                println!(
                    "credited {} wei to {} (ledger entry {})",
                    args.wei, args.address, entry.seq
                );
            }
            args.address
        }
        AccountCommand::Refund { address, caller } => {
            let caller = acting(&db, &caller)?;
            let refunded = db.refund(&caller, address)?;
            if !json {
                println!(
                    "refunded {refunded} wei to {address}: claimable after the next epoch closes"
                );
            }
            address
        }
    };
    let view = AccountView::of(&db, address)?;
    if json {
        return print_json(&view);
    }
    print_table(
        &[
            "account",
            "balance_wei",
            "credited_wei",
            "charged_wei",
            "refunded_wei",
            "answers",
        ],
        &[vec![
            view.address,
            view.balance_wei,
            view.credited_wei,
            view.charged_wei,
            view.refunded_wei,
            view.answers.to_string(),
        ]],
    );
    Ok(())
}
