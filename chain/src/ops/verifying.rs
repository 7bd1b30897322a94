//! `verify`: the ledger's entries against what the chain holds. Storage replays the hash chain
//! and every closed epoch from its entries (`Store::verify_ledger`); each epoch's recomputed
//! ledger head and Merkle root are then compared with the `ledgerHeads(n)` and `roots(n)` an
//! earlier sync posted. A ledger rewritten here, even one rewritten whole (entries, hashes,
//! epochs and balances made consistent again, so that `provdb ledger verify` passes), cannot
//! give the heads the chain already holds.
//!
//! Invariant: read only, here and on chain.

use std::path::Path;

use provdb_storage::{Store, hex32};
use serde::Serialize;

use super::deploying::Deployment;
use crate::client::RetryPolicy;
use crate::error::Result;

/// One epoch: as its entries give it here, and as the chain holds it.
#[derive(Clone, Debug, Serialize)]
pub struct VerifiedEpoch {
    /// Its number.
    pub epoch: u64,
    /// The hash of its last entry, recomputed here (None: the ledger has no such epoch).
    pub ledger_head: Option<String>,
    /// The head posted on chain (None: not posted yet).
    pub chain_ledger_head: Option<String>,
    /// The Merkle root of its balances, recomputed here.
    pub root: Option<String>,
    /// The root posted on chain.
    pub chain_root: Option<String>,
    /// "matches", "not posted" (closed here, not on chain yet), "missing here" (on chain, not
    /// in this ledger) or "diverged" (head or root differ).
    pub state: &'static str,
}

/// What `verify` found.
#[derive(Clone, Debug, Serialize)]
pub struct VerifyReport {
    /// Ledger entries read.
    pub entries: u64,
    /// The first broken entry here and why (the local check; None when it passes).
    pub broken: Option<(u64, String)>,
    /// The chain's last epoch.
    pub chain_last_epoch: u64,
    /// Every epoch, here and on chain.
    pub epochs: Vec<VerifiedEpoch>,
    /// The ledger verifies here and every posted epoch matches the chain.
    pub ok: bool,
}

/// Replays the ledger here and compares every closed epoch with the chain's.
pub async fn verify(
    store: &Store,
    data_dir: &Path,
    rpc_url: Option<&str>,
    retry: RetryPolicy,
) -> Result<VerifyReport> {
    let d = Deployment::open(data_dir, rpc_url, None, retry)?;
    let check = store.verify_ledger()?;
    let (chain_last, _) = d.last_epoch().await?;
    let last = chain_last.max(check.epochs.len() as u64);
    let mut epochs = Vec::with_capacity(last as usize);
    for number in 1..=last {
        let here = check.epochs.get(number as usize - 1);
        let on_chain = if number <= chain_last {
            Some((d.ledger_head(number).await?, d.root(number).await?))
        } else {
            None
        };
        let state = match (here, on_chain) {
            (Some(_), None) => "not posted",
            (None, _) => "missing here",
            (Some(e), Some((head, root))) if e.ledger_head == head && e.root == root => "matches",
            (Some(_), Some(_)) => "diverged",
        };
        epochs.push(VerifiedEpoch {
            epoch: number,
            ledger_head: here.map(|e| hex32(&e.ledger_head)),
            chain_ledger_head: on_chain.map(|(head, _)| hex32(&head)),
            root: here.map(|e| hex32(&e.root)),
            chain_root: on_chain.map(|(_, root)| hex32(&root)),
            state,
        });
    }
    let ok = check.broken.is_none()
        && epochs
            .iter()
            .all(|e| matches!(e.state, "matches" | "not posted"));
    Ok(VerifyReport {
        entries: check.entries,
        broken: check.broken,
        chain_last_epoch: chain_last,
        epochs,
        ok,
    })
}
