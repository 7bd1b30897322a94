//! `status`: local epochs and batches against the chain's (read only), and the redaction of
//! the RPC URL for reports shown beyond the operator's terminal.

use std::path::Path;

use alloy::providers::Provider;
use provdb_storage::{Store, hex32};
use serde::Serialize;

use super::deploying::Deployment;
use super::syncing::pending_batches;
use crate::client::{RetryPolicy, classify_rpc};
use crate::error::Result;

/// One epoch, locally and on chain.
#[derive(Clone, Debug, Serialize)]
pub struct EpochStatus {
    /// Its number.
    pub epoch: u64,
    /// The local root.
    pub local_root: String,
    /// The root on chain (None: not posted yet).
    pub chain_root: Option<String>,
    /// The total, in wei (decimal).
    pub total_wei: String,
    /// The transaction that posted it, when recorded.
    pub tx: Option<String>,
    /// "synced", "pending" (closed here, not on chain) or "diverged".
    pub state: &'static str,
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
    /// The distributor's balance, in wei (decimal).
    pub distributor_balance_wei: String,
}

/// Local epochs and batches against the chain's (read only).
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
        let chain_root = if epoch.epoch <= chain_last {
            Some(d.root(epoch.epoch).await?)
        } else {
            None
        };
        let state = match chain_root {
            None => "pending",
            Some(root) if root == epoch.root => "synced",
            Some(_) => "diverged",
        };
        epochs.push(EpochStatus {
            epoch: epoch.epoch,
            local_root: hex32(&epoch.root),
            chain_root: chain_root.as_ref().map(hex32),
            total_wei: epoch.total_wei.to_string(),
            tx: d.state.epochs.get(&epoch.epoch).map(|r| r.tx.clone()),
            state,
        });
    }
    let chain_last_sequence = d.last_sequence().await?;
    let local_batches = pending_batches(store, 0)?.len() as u64;
    let pending = pending_batches(store, chain_last_sequence)?.len() as u64;
    let balance = d
        .client
        .run("eth_getBalance", || async {
            d.client
                .provider
                .get_balance(*d.distributor().address())
                .await
                .map_err(classify_rpc)
        })
        .await?;
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
