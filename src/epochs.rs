//! Proofs of closed ledger epochs: an account's cumulative balance in an epoch with the Merkle
//! proof a claim contract verifies (OpenZeppelin `StandardMerkleTree` leaf `(address,
//! uint256)`).
//!
//! Invariant: a proof is built from the epoch's stored balances only after their tree was
//! checked against the epoch's stored root (`Db::epoch_tree`), so a proof handed out always
//! verifies against the root that was (or will be) posted on chain.

use provdb_storage::{Address, merkle_leaf_hash};

use crate::db::Db;
use crate::error::{Error, Result};

/// An account's cumulative balance in a closed epoch and its Merkle proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpochProof {
    /// The epoch the proof is for.
    pub epoch: u64,
    /// The account.
    pub account: Address,
    /// What the account has earned in all, up to and including this epoch.
    pub cumulative_wei: u128,
    /// The leaf hash, `keccak256(keccak256(abi.encode(account, cumulative_wei)))`.
    pub leaf: [u8; 32],
    /// The siblings from the leaf up to the root.
    pub proof: Vec<[u8; 32]>,
    /// The epoch's Merkle root.
    pub root: [u8; 32],
}

impl Db {
    /// `account`'s proof in `epoch`, or in the last closed epoch when `epoch` is `None`.
    ///
    /// [`Error::NotFound`] when no epoch is closed yet or the account has no balance in the
    /// epoch; an epoch number that was never closed is [`Error::Storage`] (invalid request).
    pub fn epoch_proof(&self, account: Address, epoch: Option<u64>) -> Result<EpochProof> {
        let number = match epoch {
            Some(number) => number,
            None => self
                .epochs()?
                .last()
                .map(|e| e.epoch)
                .ok_or_else(|| Error::NotFound("no epoch is closed yet".into()))?,
        };
        let tree = self.epoch_tree(number)?;
        let (Some(amount), Some(proof)) = (tree.amount(&account), tree.proof(&account)) else {
            return Err(Error::NotFound(format!(
                "{account} has no balance in epoch {number}"
            )));
        };
        Ok(EpochProof {
            epoch: number,
            account,
            cumulative_wei: amount,
            leaf: merkle_leaf_hash(&account, amount),
            proof,
            root: tree.root(),
        })
    }
}
