//! `provdb chain verify`: the ledger replayed from its entries against the epochs posted on
//! chain; exit 1 when the ledger is broken here or any posted epoch differs.

use std::path::Path;

use provdb::Db;

use crate::commands::chain::{ChainRpcArgs, retry, runtime};
use crate::output::{UserError, print_json, print_table};

pub(crate) fn run(data: &Path, json: bool, rpc: &ChainRpcArgs) -> anyhow::Result<()> {
    let db = Db::open(data)?;
    let report = runtime()?.block_on(provdb_chain::verify(
        db.store(),
        data,
        rpc.rpc.as_deref(),
        retry(rpc),
    ))?;
    if json {
        print_json(&report)?;
    } else {
        let rows: Vec<Vec<String>> = report
            .epochs
            .iter()
            .map(|e| {
                vec![
                    e.epoch.to_string(),
                    e.state.to_string(),
                    e.ledger_head.clone().unwrap_or_default(),
                    e.chain_ledger_head.clone().unwrap_or_default(),
                ]
            })
            .collect();
        print_table(
            &["epoch", "state", "ledger_head", "chain_ledger_head"],
            &rows,
        );
    }
    if let Some((seq, reason)) = &report.broken {
        return Err(UserError(format!("ledger broken at entry {seq}: {reason}")).into());
    }
    let differing: Vec<String> = report
        .epochs
        .iter()
        .filter(|e| !matches!(e.state, "matches" | "not posted"))
        .map(|e| format!("epoch {} {}", e.epoch, e.state))
        .collect();
    if !differing.is_empty() {
        return Err(UserError(format!(
            "the ledger here does not give what the chain holds: {}",
            differing.join(", ")
        ))
        .into());
    }
    if !json {
        println!(
            "ledger ok against the chain: {} entries, {} epochs on chain",
            report.entries, report.chain_last_epoch
        );
    }
    Ok(())
}
