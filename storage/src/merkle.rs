//! The Merkle tree an attribution epoch closes into: one leaf per contributor, `(address,
//! amount)`, built exactly as OpenZeppelin's `StandardMerkleTree.of(values, ["address",
//! "uint256"])` builds it (npm `@openzeppelin/merkle-tree`, <https://github.com/OpenZeppelin/merkle-tree>),
//! so that its root is what the epoch distributor contract stores and its proofs are what
//! OpenZeppelin's `MerkleProof.verify` accepts on chain.
//!
//! Owns: the leaf encoding, the tree layout, proofs and their verification. It does not know
//! what an epoch is; the ledger hands it per-contributor totals.
//!
//! Encoding, byte for byte:
//! - leaf = `keccak256(keccak256(abi.encode(address, uint256)))`, where `abi.encode` is 64 bytes:
//!   the 20-byte address left-padded with zeros to 32 bytes, then the amount as a 32-byte
//!   big-endian integer (a `u128` here, so its first 16 bytes are zero). Hashing twice keeps a
//!   leaf from ever equalling an internal node (a second-preimage defence OpenZeppelin adopted).
//! - internal node = `keccak256(min(a, b) ‖ max(a, b))` of its two children (bytewise order):
//!   sorted pairs, so a proof needs no left/right flags.
//! - layout: the leaf hashes are sorted ascending and stored at the end of an array of `2n - 1`
//!   nodes in reverse order (the smallest leaf is the last node); node `i`'s children are
//!   `2i + 1` and `2i + 2`, its parent `(i - 1) / 2`, its sibling `i + 1` when `i` is odd and
//!   `i - 1` when even; the root is node 0.
//! - a proof is the siblings on the path from the leaf up to (not including) the root.
//!
//! Invariants of a [`MerkleTree`]:
//! - it has between 1 and [`MAX_MERKLE_LEAVES`] leaves: an empty tree is refused, as
//!   OpenZeppelin refuses it, because no root would commit to anything (a caller with no
//!   contributors has no epoch to publish);
//! - every address appears once (a duplicate is the caller's error: totals are summed per
//!   contributor before they get here);
//! - the root depends on the set of leaves, not on the order they were given in;
//! - a one-leaf tree's root is that leaf's hash and its proof is empty.

use crate::error::{Result, StorageError};
use crate::hash::keccak256;
use crate::model::{Address, RecordId};

/// The most leaves a tree may have: `2^24` leaves is 1 GiB of nodes.
pub const MAX_MERKLE_LEAVES: usize = 1 << 24;

/// `abi.encode(address, uint256)` of one leaf: 64 bytes.
fn abi_encode(account: &Address, amount: u128) -> [u8; 64] {
    let mut out = [0u8; 64];
    out[12..32].copy_from_slice(&account.0);
    out[48..64].copy_from_slice(&amount.to_be_bytes());
    out
}

/// The leaf hash of `(account, amount)`: `keccak256(keccak256(abi.encode(account, amount)))`,
/// as OpenZeppelin's `StandardMerkleTree` and a claim contract compute it.
pub fn merkle_leaf_hash(account: &Address, amount: u128) -> [u8; 32] {
    keccak256(&keccak256(&abi_encode(account, amount)))
}

/// The parent of two nodes: keccak256 of the two concatenated in ascending order.
fn hash_pair(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(low);
    buf[32..].copy_from_slice(high);
    keccak256(&buf)
}

/// The root that `proof` leads to from `leaf` (OpenZeppelin's `MerkleProof.processProof`).
pub fn merkle_process_proof(leaf: &[u8; 32], proof: &[[u8; 32]]) -> [u8; 32] {
    proof
        .iter()
        .fold(*leaf, |node, sibling| hash_pair(&node, sibling))
}

/// True when `proof` proves that `leaf` (a [`merkle_leaf_hash`]) is in the tree whose root is
/// `root`: what a claimant or the contract (OpenZeppelin's `MerkleProof.verify`) checks.
pub fn merkle_verify(root: &[u8; 32], leaf: &[u8; 32], proof: &[[u8; 32]]) -> bool {
    merkle_process_proof(leaf, proof) == *root
}

/// One leaf's value and where its hash sits in the node array.
#[derive(Clone, Copy, Debug)]
struct Entry {
    account: Address,
    amount: u128,
    node_index: usize,
}

/// An OpenZeppelin-compatible Merkle tree over `(address, amount)` leaves (see the module docs
/// for the encoding and layout).
#[derive(Clone, Debug)]
pub struct MerkleTree {
    /// The `2n - 1` nodes; the root is `nodes[0]`.
    nodes: Vec<[u8; 32]>,
    /// One entry per leaf, sorted by address (for lookup by binary search).
    entries: Vec<Entry>,
}

impl MerkleTree {
    /// Builds the tree of `leaves`, given in any order.
    ///
    /// Errors ([`StorageError::Invalid`], a user error): no leaves, more than
    /// [`MAX_MERKLE_LEAVES`], or an address given twice.
    pub fn new(leaves: &[(Address, u128)]) -> Result<Self> {
        if leaves.is_empty() {
            return Err(StorageError::Invalid(
                "a Merkle tree needs at least one leaf".into(),
            ));
        }
        if leaves.len() > MAX_MERKLE_LEAVES {
            return Err(StorageError::Invalid(format!(
                "a Merkle tree holds at most {MAX_MERKLE_LEAVES} leaves, {} were given",
                leaves.len()
            )));
        }
        let leaf_count = leaves.len();
        let node_count = 2 * leaf_count - 1;

        // (hash, input position), sorted by hash: the tree's leaf order.
        let mut hashed: Vec<([u8; 32], usize)> = leaves
            .iter()
            .enumerate()
            .map(|(position, (account, amount))| (merkle_leaf_hash(account, *amount), position))
            .collect();
        hashed.sort_unstable();

        let mut nodes = vec![[0u8; 32]; node_count];
        let mut entries = Vec::with_capacity(leaf_count);
        for (rank, (hash, position)) in hashed.iter().enumerate() {
            let node_index = node_count - 1 - rank;
            nodes[node_index] = *hash;
            let (account, amount) = leaves[*position];
            entries.push(Entry {
                account,
                amount,
                node_index,
            });
        }
        for i in (0..node_count - leaf_count).rev() {
            nodes[i] = hash_pair(&nodes[2 * i + 1], &nodes[2 * i + 2]);
        }

        entries.sort_unstable_by_key(|entry| entry.account);
        if let Some(pair) = entries.windows(2).find(|w| w[0].account == w[1].account) {
            return Err(StorageError::Invalid(format!(
                "address {} appears twice among the Merkle leaves; sum its amounts first",
                pair[0].account
            )));
        }
        Ok(Self { nodes, entries })
    }

    /// The root: what the epoch commits to on chain.
    pub fn root(&self) -> [u8; 32] {
        self.nodes[0]
    }

    /// The number of leaves (at least 1).
    pub fn leaf_count(&self) -> usize {
        self.entries.len()
    }

    /// The amount of `account`'s leaf, if it has one.
    pub fn amount(&self, account: &Address) -> Option<u128> {
        self.entry(account).map(|entry| entry.amount)
    }

    /// The proof of `account`'s leaf (the siblings from the leaf up to the root), or `None` when
    /// `account` has no leaf. Verify it with [`merkle_verify`] and
    /// `merkle_leaf_hash(account, amount)`.
    pub fn proof(&self, account: &Address) -> Option<Vec<[u8; 32]>> {
        let mut index = self.entry(account)?.node_index;
        let mut proof = Vec::new();
        while index > 0 {
            let sibling = if index % 2 == 1 { index + 1 } else { index - 1 };
            proof.push(self.nodes[sibling]);
            index = (index - 1) / 2;
        }
        Some(proof)
    }

    /// The leaves `(address, amount)`, in address order.
    pub fn leaves(&self) -> impl ExactSizeIterator<Item = (Address, u128)> + '_ {
        self.entries
            .iter()
            .map(|entry| (entry.account, entry.amount))
    }

    fn entry(&self, account: &Address) -> Option<&Entry> {
        self.entries
            .binary_search_by_key(account, |entry| entry.account)
            .ok()
            .map(|i| &self.entries[i])
    }
}

/// The Merkle root of a set of record ids (an ingest batch the registry anchors, the records an
/// adapter was trained on), as OpenZeppelin's `StandardMerkleTree.of(ids.map(id => [id]),
/// ["bytes32"])` computes it: leaf = `keccak256(keccak256(id))`, sorted pairs, the layout of
/// [`MerkleTree`]. Order-free; `None` for no ids.
pub fn record_ids_root(ids: &[RecordId]) -> Option<[u8; 32]> {
    if ids.is_empty() {
        return None;
    }
    let mut leaves: Vec<[u8; 32]> = ids.iter().map(|id| keccak256(&keccak256(&id.0))).collect();
    leaves.sort_unstable();
    let leaf_count = leaves.len();
    let node_count = 2 * leaf_count - 1;
    let mut nodes = vec![[0u8; 32]; node_count];
    for (rank, leaf) in leaves.iter().enumerate() {
        nodes[node_count - 1 - rank] = *leaf;
    }
    for i in (0..node_count - leaf_count).rev() {
        nodes[i] = hash_pair(&nodes[2 * i + 1], &nodes[2 * i + 2]);
    }
    Some(nodes[0])
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn address(byte: u8) -> Address {
        Address([byte; 20])
    }

    fn h(hex_str: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_str.trim_start_matches("0x"), &mut out).unwrap();
        out
    }

    #[test]
    fn abi_encoding_pads_address_left_and_amount_big_endian() {
        let encoded = abi_encode(&address(0xab), 0x0102);
        assert_eq!(&encoded[..12], &[0u8; 12]);
        assert_eq!(&encoded[12..32], &[0xab; 20]);
        assert_eq!(&encoded[32..62], &[0u8; 30]);
        assert_eq!(&encoded[62..], &[0x01, 0x02]);
    }

    // Known answers from @openzeppelin/merkle-tree 1.0.8 (`scripts/oz-merkle.sh`); the two-leaf
    // case is the example of that package's README. The full cross-check against the package is
    // storage/tests/merkle_oz.rs.
    #[test]
    fn matches_openzeppelin_readme_example() {
        let tree = MerkleTree::new(&[
            (address(0x11), 5_000_000_000_000_000_000),
            (address(0x22), 2_500_000_000_000_000_000),
        ])
        .unwrap();
        assert_eq!(
            tree.root(),
            h("0xd4dee0beab2d53f2cc83e567171bd2820e49898130a22622b10ead383e90bd77")
        );
        assert_eq!(
            tree.proof(&address(0x11)).unwrap(),
            vec![h(
                "0xb92c48e9d7abe27fd8dfd6b5dfdbfb1c9a463f80c712b66f3a5180a090cccafc"
            )]
        );
    }

    #[test]
    fn matches_openzeppelin_three_leaves() {
        let tree =
            MerkleTree::new(&[(address(0x11), 1), (address(0x22), 2), (address(0x33), 3)]).unwrap();
        assert_eq!(
            tree.root(),
            h("0x5e771244079f3cd0c00b8049645e77e8e406649537ff2780ac160826ee674f49")
        );
        assert_eq!(
            tree.proof(&address(0x22)).unwrap(),
            vec![
                h("0x1822ae4b563c0815a9cb78809432584aa220f215c2777ddf51cf5bdd1c0ad36f"),
                h("0x60648906e1a3f55dd188e992dc24db68c6b6d455fe925705f5e110ed7889ad90"),
            ]
        );
    }

    #[test]
    fn one_leaf_root_is_its_hash_and_proof_is_empty() {
        let tree = MerkleTree::new(&[(address(0x11), 1)]).unwrap();
        let leaf = merkle_leaf_hash(&address(0x11), 1);
        assert_eq!(
            tree.root(),
            h("0x60648906e1a3f55dd188e992dc24db68c6b6d455fe925705f5e110ed7889ad90")
        );
        assert_eq!(tree.root(), leaf);
        assert_eq!(tree.proof(&address(0x11)), Some(vec![]));
        assert!(merkle_verify(&tree.root(), &leaf, &[]));
        assert_eq!(tree.leaf_count(), 1);
    }

    #[test]
    fn empty_is_refused() {
        let err = MerkleTree::new(&[]).unwrap_err();
        assert!(err.is_user_error(), "{err}");
    }

    #[test]
    fn duplicate_address_is_refused_even_with_other_amounts() {
        let err =
            MerkleTree::new(&[(address(1), 5), (address(2), 1), (address(1), 6)]).unwrap_err();
        assert!(err.is_user_error(), "{err}");
        assert!(err.to_string().contains(&address(1).to_string()), "{err}");
    }

    #[test]
    fn unknown_address_has_no_proof() {
        let tree = MerkleTree::new(&[(address(1), 5), (address(2), 1)]).unwrap();
        assert_eq!(tree.proof(&address(3)), None);
        assert_eq!(tree.amount(&address(3)), None);
        assert_eq!(tree.amount(&address(2)), Some(1));
    }

    fn leaves_strategy() -> impl Strategy<Value = Vec<(Address, u128)>> {
        proptest::collection::btree_map(any::<[u8; 20]>(), any::<u128>(), 1..70).prop_map(|map| {
            map.into_iter()
                .map(|(bytes, amount)| (Address(bytes), amount))
                .collect()
        })
    }

    proptest! {
        #[test]
        fn every_proof_verifies_and_nothing_else_does(
            leaves in leaves_strategy(),
            pick in any::<prop::sample::Index>(),
            delta in 1..=u128::MAX,
            flip_bit in 0..160usize,
        ) {
            let tree = MerkleTree::new(&leaves).unwrap();
            let root = tree.root();
            prop_assert_eq!(tree.leaf_count(), leaves.len());
            for (account, amount) in &leaves {
                let proof = tree.proof(account).unwrap();
                prop_assert!(proof.len() <= usize::BITS as usize);
                prop_assert!(merkle_verify(&root, &merkle_leaf_hash(account, *amount), &proof));
                prop_assert_eq!(tree.amount(account), Some(*amount));
            }

            let (account, amount) = leaves[pick.index(leaves.len())];
            let proof = tree.proof(&account).unwrap();
            // Another amount for the same address.
            let other_amount = amount.wrapping_add(delta);
            prop_assert!(!merkle_verify(&root, &merkle_leaf_hash(&account, other_amount), &proof));
            // Another address (one bit flipped) with the same amount.
            let mut other = account;
            other.0[flip_bit / 8] ^= 1 << (flip_bit % 8);
            prop_assert!(!merkle_verify(&root, &merkle_leaf_hash(&other, amount), &proof));
            // The right leaf with a damaged proof (when there is one to damage).
            if let Some(first) = proof.first() {
                let mut damaged = proof.clone();
                damaged[0] = {
                    let mut node = *first;
                    node[31] ^= 1;
                    node
                };
                prop_assert!(!merkle_verify(&root, &merkle_leaf_hash(&account, amount), &damaged));
            }
        }

        #[test]
        fn input_order_does_not_change_the_tree(
            leaves in leaves_strategy(),
            shuffle_seed in any::<u64>(),
        ) {
            let mut shuffled = leaves.clone();
            shuffled.reverse();
            // A deterministic Fisher–Yates shuffle (splitmix64) on top of the reversal.
            let mut state = shuffle_seed;
            for i in (1..shuffled.len()).rev() {
                state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = state;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                z ^= z >> 31;
                shuffled.swap(i, (z % (i as u64 + 1)) as usize);
            }
            let a = MerkleTree::new(&leaves).unwrap();
            let b = MerkleTree::new(&shuffled).unwrap();
            prop_assert_eq!(a.root(), b.root());
            for (account, _) in &leaves {
                prop_assert_eq!(a.proof(account), b.proof(account));
            }
            prop_assert!(a.leaves().eq(b.leaves()));
        }
    }

    #[test]
    fn record_ids_root_is_order_free_and_one_leaf_is_its_hash() {
        let a = RecordId([1; 32]);
        let b = RecordId([2; 32]);
        let c = RecordId([3; 32]);
        assert_eq!(record_ids_root(&[]), None);
        assert_eq!(record_ids_root(&[a]), Some(keccak256(&keccak256(&a.0))));
        assert_eq!(record_ids_root(&[a, b, c]), record_ids_root(&[c, a, b]));
        assert_ne!(record_ids_root(&[a, b]), record_ids_root(&[a, c]));
    }
}
