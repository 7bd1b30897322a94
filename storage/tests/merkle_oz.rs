//! Cross-check of `MerkleTree` against OpenZeppelin's own `StandardMerkleTree` (npm
//! `@openzeppelin/merkle-tree`, pinned in `scripts/reference/oz-merkle/`), run through
//! `scripts/oz-merkle.sh`: the same leaves must give the same root and, for every leaf, the same
//! proof. Needs node and npm (`scripts/install-deps.sh` installs the package).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use provdb_storage::{Address, MerkleTree, hex32, merkle_leaf_hash, merkle_verify};

/// The repository root, found at run time: the target directory is shared between clones, so a
/// compile-time path could name another clone.
fn repo_root() -> PathBuf {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    PathBuf::from(manifest_dir)
        .parent()
        .expect("storage/ has a parent")
        .to_path_buf()
}

struct OzTree {
    root: String,
    proofs: Vec<Vec<String>>,
}

/// Runs OpenZeppelin's `StandardMerkleTree.of(leaves, ["address", "uint256"])`.
fn openzeppelin(leaves: &[(Address, u128)]) -> OzTree {
    let script = repo_root().join("scripts/oz-merkle.sh");
    let input: Vec<[String; 2]> = leaves
        .iter()
        .map(|(account, amount)| [account.to_string(), amount.to_string()])
        .collect();
    let mut child = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run bash {}: {e}", script.display()));
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(serde_json::to_string(&input).expect("json").as_bytes())
        .expect("write leaves to oz-merkle.sh");
    let output = child.wait_with_output().expect("wait for oz-merkle.sh");
    assert!(
        output.status.success(),
        "{} failed ({}); it needs node and npm:\n{}",
        script.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("oz-merkle.sh prints JSON");
    let root = json["root"].as_str().expect("root is a string").to_string();
    let proofs = json["proofs"]
        .as_array()
        .expect("proofs is an array")
        .iter()
        .map(|proof| {
            proof
                .as_array()
                .expect("a proof is an array")
                .iter()
                .map(|node| node.as_str().expect("a proof node is a string").to_string())
                .collect()
        })
        .collect();
    OzTree { root, proofs }
}

/// Builds both trees over `leaves` and asserts the same root and the same proof for every leaf.
fn assert_same_as_openzeppelin(leaves: &[(Address, u128)]) {
    let ours = MerkleTree::new(leaves).expect("valid leaves");
    let theirs = openzeppelin(leaves);
    assert_eq!(
        hex32(&ours.root()),
        theirs.root,
        "root of {} leaves",
        leaves.len()
    );
    assert_eq!(theirs.proofs.len(), leaves.len());
    for ((account, amount), their_proof) in leaves.iter().zip(&theirs.proofs) {
        let proof = ours.proof(account).expect("every leaf has a proof");
        let proof_hex: Vec<String> = proof.iter().map(hex32).collect();
        assert_eq!(
            &proof_hex,
            their_proof,
            "proof of {account} in {} leaves",
            leaves.len()
        );
        assert!(merkle_verify(
            &ours.root(),
            &merkle_leaf_hash(account, *amount),
            &proof
        ));
    }
}

/// splitmix64: deterministic test data without a rand dependency.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn address(&mut self) -> Address {
        let mut bytes = [0u8; 20];
        for chunk in bytes.chunks_mut(8) {
            let word = self.next().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
        Address(bytes)
    }

    /// An amount of a random bit length (0..=128 bits), so small, wei-sized and huge all occur.
    fn amount(&mut self) -> u128 {
        let full = (u128::from(self.next()) << 64) | u128::from(self.next());
        let bits = (self.next() % 129) as u32;
        full.checked_shr(128 - bits).unwrap_or(0)
    }

    fn leaves(&mut self, count: usize) -> Vec<(Address, u128)> {
        (0..count)
            .map(|_| (self.address(), self.amount()))
            .collect()
    }
}

#[test]
fn one_leaf_matches_openzeppelin() {
    assert_same_as_openzeppelin(&[(Address([0x11; 20]), 1)]);
}

#[test]
fn two_leaves_match_openzeppelin() {
    assert_same_as_openzeppelin(&[
        (Address([0x11; 20]), 5_000_000_000_000_000_000),
        (Address([0x22; 20]), 2_500_000_000_000_000_000),
    ]);
}

#[test]
fn extreme_values_match_openzeppelin() {
    assert_same_as_openzeppelin(&[
        (Address([0; 20]), 0),
        (Address([0xff; 20]), u128::MAX),
        (Address([0x01; 20]), 1),
        (Address([0x80; 20]), 1 << 127),
    ]);
}

#[test]
fn random_trees_match_openzeppelin() {
    let mut rng = SplitMix(0x70_72_6f_76_64_62);
    // 50 as asked, and sizes around powers of two where the layout's last level changes shape.
    for count in [3, 5, 7, 8, 9, 50, 64] {
        assert_same_as_openzeppelin(&rng.leaves(count));
    }
}
