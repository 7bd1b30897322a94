// OpenZeppelin's StandardMerkleTree over (address, uint256) leaves: the reference that
// storage/src/merkle.rs is checked against (storage/tests/merkle_oz.rs). Run it through
// scripts/oz-merkle.sh, which installs the pinned package and sets OZ_MERKLE_DIR.
//
// stdin:  [["0x<40 hex>", "<decimal amount>"], ...]        (amounts as strings: they exceed 2^53)
// stdout: {"root": "0x..", "proofs": [["0x..", ...], ...]}  (proofs[i] is the proof of leaf i)
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const dir = process.env.OZ_MERKLE_DIR;
if (!dir) {
  process.stderr.write('oz_merkle.mjs: OZ_MERKLE_DIR is not set; run scripts/oz-merkle.sh\n');
  process.exit(2);
}
const require = createRequire(join(dir, 'package.json'));
const { StandardMerkleTree } = require('@openzeppelin/merkle-tree');

const leaves = JSON.parse(readFileSync(0, 'utf8')).map(([address, amount]) => [address, BigInt(amount)]);
const tree = StandardMerkleTree.of(leaves, ['address', 'uint256']);
const proofs = leaves.map((_, i) => tree.getProof(i));
process.stdout.write(JSON.stringify({ root: tree.root, proofs }) + '\n');
