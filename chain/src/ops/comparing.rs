//! `status`: local epochs, batches and credited deposits against the chain's (read only),
//! the money the distributor took in and paid out, and the redaction of the RPC URL for reports
//! shown beyond the operator's terminal.

use std::path::Path;

use alloy::providers::Provider;
use provdb_storage::{Store, hex32};
use serde::Serialize;

use super::deploying::{Deployment, parse_address};
use super::syncing::pending_batches;
use crate::bindings::Erc20;
use crate::client::{RetryPolicy, classify, classify_rpc};
use crate::error::{ChainError, Result};

/// One epoch, locally and on chain.
#[derive(Clone, Debug, Serialize)]
pub struct EpochStatus {
    /// Its number.
    pub epoch: u64,
    /// The local root.
    pub local_root: String,
    /// The root on chain (None: not posted yet).
    pub chain_root: Option<String>,
    /// The ledger head it closed over, here.
    pub local_ledger_head: String,
    /// The ledger head posted with it (None: not posted yet).
    pub chain_ledger_head: Option<String>,
    /// The total, in wei (decimal).
    pub total_wei: String,
    /// The transaction that posted it, when recorded.
    pub tx: Option<String>,
    /// "synced", "pending" (closed here, not on chain) or "diverged" (root or ledger head).
    pub state: &'static str,
}

/// Deposits and money on chain against what this database credited.
#[derive(Clone, Debug, Serialize)]
pub struct DepositStatus {
    /// "ETH" or the ERC-20's address.
    pub asset: String,
    /// Deposits on chain (`nextDepositId`).
    pub chain_deposits: u64,
    /// Of them, credited here (each once).
    pub credited_deposits: u64,
    /// Deposits on chain not credited yet (short of confirmations, or no sync since).
    pub uncredited_deposits: u64,
    /// The sum credited here from this distributor's deposits (decimal wei).
    pub credited_wei: String,
    /// Everything paid in on chain, deposits and funding (`totalDeposited`, decimal wei).
    pub total_deposited_wei: String,
    /// The last posted epoch's total: what the chain owes in all (`lastTotal`).
    pub total_owed_wei: String,
    /// Everything claims paid out (`totalClaimed`).
    pub total_claimed_wei: String,
    /// What the distributor holds (its ETH or token balance).
    pub balance_wei: String,
    /// Whether `total_claimed <= total_owed <= total_deposited` holds on chain.
    pub payouts_within_deposits: bool,
}

/// Local and on-chain state side by side.
#[derive(Clone, Debug, Serialize)]
pub struct StatusReport {
    /// Chain id (as recorded at deploy).
    pub chain_id: u64,
    /// The RPC endpoint used (whole: `provdb chain status` is the operator's; the HTTP route
    /// shows [`redact_rpc_url`] of it).
    pub rpc_url: String,
    /// AttributionDistributor address.
    pub distributor: String,
    /// ProvenanceRegistry address.
    pub registry: String,
    /// Closed epochs here.
    pub local_epochs: u64,
    /// The chain's last epoch.
    pub chain_last_epoch: u64,
    /// Every epoch, local and chain side.
    pub epochs: Vec<EpochStatus>,
    /// Ingest batches of public Datanets here (a private Datanet's never go on chain).
    pub local_batches: u64,
    /// The chain's last anchored sequence number.
    pub chain_last_sequence: u64,
    /// Ingest batches of public Datanets not anchored yet.
    pub pending_batches: u64,
    /// The distributor's balance (ETH, or the token's), in wei (decimal).
    pub distributor_balance_wei: String,
    /// Deposits and money, on chain and credited here.
    pub deposits: DepositStatus,
}

/// Local epochs, batches and credited deposits against the chain's (read only).
pub async fn status(
    store: &Store,
    data_dir: &Path,
    rpc_url: Option<&str>,
    retry: RetryPolicy,
) -> Result<StatusReport> {
    let d = Deployment::open(data_dir, rpc_url, None, retry)?;
    let local = store.epochs()?;
    let (chain_last, _) = d.last_epoch().await?;
    let mut epochs = Vec::with_capacity(local.len());
    for epoch in &local {
        let on_chain = if epoch.epoch <= chain_last {
            Some((
                d.root(epoch.epoch).await?,
                d.ledger_head(epoch.epoch).await?,
            ))
        } else {
            None
        };
        let state = match on_chain {
            None => "pending",
            Some((root, head)) if root == epoch.root && head == epoch.ledger_head => "synced",
            Some(_) => "diverged",
        };
        epochs.push(EpochStatus {
            epoch: epoch.epoch,
            local_root: hex32(&epoch.root),
            chain_root: on_chain.as_ref().map(|(root, _)| hex32(root)),
            local_ledger_head: hex32(&epoch.ledger_head),
            chain_ledger_head: on_chain.as_ref().map(|(_, head)| hex32(head)),
            total_wei: epoch.total_wei.to_string(),
            tx: d.state.epochs.get(&epoch.epoch).map(|r| r.tx.clone()),
            state,
        });
    }
    let chain_last_sequence = d.last_sequence().await?;
    let local_batches = pending_batches(store, 0)?.len() as u64;
    let pending = pending_batches(store, chain_last_sequence)?.len() as u64;
    let holder = *d.distributor().address();
    let balance = match &d.state.token {
        None => {
            d.client
                .run("eth_getBalance", || async {
                    d.client
                        .provider
                        .get_balance(holder)
                        .await
                        .map_err(classify_rpc)
                })
                .await?
        }
        Some(token) => {
            let token = Erc20::new(parse_address(token, "token")?, d.client.provider.clone());
            d.client
                .run("read balanceOf", || async {
                    token
                        .balanceOf(holder)
                        .call()
                        .await
                        .map_err(|e| classify("balanceOf", e))
                })
                .await?
        }
    };
    let deposits = deposit_status(store, &d, balance.to_string()).await?;
    Ok(StatusReport {
        chain_id: d.state.chain_id,
        rpc_url: d.client.url.clone(),
        distributor: d.state.distributor.clone(),
        registry: d.state.registry.clone(),
        local_epochs: local.len() as u64,
        chain_last_epoch: chain_last,
        epochs,
        local_batches,
        chain_last_sequence,
        pending_batches: pending,
        distributor_balance_wei: balance.to_string(),
        deposits,
    })
}

async fn deposit_status(
    store: &Store,
    d: &Deployment,
    balance_wei: String,
) -> Result<DepositStatus> {
    let chain_deposits = d.deposit_count(None).await?;
    let here = d.deposit_key(0);
    let mut credited_deposits = 0u64;
    let mut credited_wei = 0u128;
    for stored in store.deposits()? {
        let key = stored.deposit.key;
        if key.chain_id == here.chain_id && key.contract == here.contract {
            credited_deposits += 1;
            credited_wei = credited_wei
                .checked_add(stored.deposit.amount_wei)
                .ok_or_else(|| {
                    ChainError::Invalid("credited deposits sum to 2^128 or more".into())
                })?;
        }
    }
    let (_, owed) = d.last_epoch().await?;
    let deposited = d.total_deposited().await?;
    let claimed = d.total_claimed().await?;
    Ok(DepositStatus {
        asset: d.state.token.clone().unwrap_or_else(|| "ETH".into()),
        chain_deposits,
        credited_deposits,
        uncredited_deposits: chain_deposits.saturating_sub(credited_deposits),
        credited_wei: credited_wei.to_string(),
        total_deposited_wei: deposited.to_string(),
        total_owed_wei: owed.to_string(),
        total_claimed_wei: claimed.to_string(),
        balance_wei,
        payouts_within_deposits: claimed <= owed && owed <= deposited,
    })
}

/// The scheme, host and port of an RPC URL: its user, password, path, query and fragment,
/// where providers put API keys, are dropped (`"(redacted)"` when it has no scheme).
pub fn redact_rpc_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(redacted)".into();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    format!("{scheme}://{host}")
}

/// `text` with `url` and every secret-looking part of it (user info, and each piece of its
/// path, query and fragment of 8 characters or more) replaced: for error messages that quote
/// the URL they failed on, perhaps normalised.
pub fn redact_rpc_url_in(text: &str, url: &str) -> String {
    let mut out = text.replace(url, &redact_rpc_url(url));
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let mut secrets: Vec<&str> = rest[authority.len()..]
        .split(['/', '?', '&', '=', '#'])
        .filter(|piece| piece.len() >= 8)
        .collect();
    if let Some((user_info, _)) = authority.rsplit_once('@') {
        secrets.push(user_info);
    }
    for secret in secrets {
        out = out.replace(secret, "(redacted)");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redacted_url_keeps_scheme_host_and_port_only() {
        let cases = [
            (
                "https://eth-mainnet.example.com/v2/SECRETKEY",
                "https://eth-mainnet.example.com",
            ),
            (
                "https://user:SECRETKEY@rpc.example.com:8545/x?key=SECRETKEY#f",
                "https://rpc.example.com:8545",
            ),
            ("http://127.0.0.1:8545", "http://127.0.0.1:8545"),
            (
                "wss://node.example.com?apikey=SECRETKEY",
                "wss://node.example.com",
            ),
            ("SECRETKEY", "(redacted)"),
        ];
        for (url, expected) in cases {
            assert_eq!(redact_rpc_url(url), expected, "{url}");
        }
    }

    #[test]
    fn an_error_quoting_the_url_loses_its_key() {
        for (url, quoted) in [
            (
                "https://rpc.example.com/v2/SECRETKEY",
                "https://rpc.example.com/v2/SECRETKEY/",
            ),
            (
                "https://rpc.example.com?key=SECRETKEY",
                "https://rpc.example.com/?key=SECRETKEY",
            ),
            (
                "https://me:SECRETKEY@rpc.example.com",
                "https://me:SECRETKEY@rpc.example.com/",
            ),
        ] {
            let error = format!("error sending request for url ({quoted}): timed out");
            let redacted = redact_rpc_url_in(&error, url);
            assert!(!redacted.contains("SECRETKEY"), "{redacted}");
            assert!(redacted.contains("rpc.example.com"), "{redacted}");
        }
    }
}
