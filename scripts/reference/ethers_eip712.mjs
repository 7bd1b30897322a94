// ethers' EIP-712: the wallet side that provdb's record signatures (src/ingest/signature.rs) are
// checked against (server/tests/adversarial/signatures.rs). The types are written here from
// provdb's documentation, not taken from provdb. Run it through scripts/ethers.sh, which
// installs the pinned package and sets ETHERS_DIR.
//
// stdin:  {"sign":   [{"key": "0x<64 hex>", "domain": {...}, "message": {...}}],
//          "verify": [{"domain": {...}, "message": {...}, "signature": "0x.."}]}
//         (domain: {"name", "version", "chainId"}; message: {"datanet", "recordId", "license",
//          "createdAt" (decimal string), "supersedes"})
// stdout: {"signatures": ["0x..", ...], "signers": ["0x<checksummed address>", ...]}
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const dir = process.env.ETHERS_DIR;
if (!dir) {
  process.stderr.write('ethers_eip712.mjs: ETHERS_DIR is not set; run scripts/ethers.sh\n');
  process.exit(2);
}
const require = createRequire(join(dir, 'package.json'));
const { Wallet, verifyTypedData } = require('ethers');

const types = {
  Record: [
    { name: 'datanet', type: 'string' },
    { name: 'recordId', type: 'bytes32' },
    { name: 'license', type: 'string' },
    { name: 'createdAt', type: 'int64' },
    { name: 'supersedes', type: 'bytes32' },
  ],
};

const request = JSON.parse(readFileSync(0, 'utf8'));
const signatures = [];
for (const { key, domain, message } of request.sign ?? []) {
  signatures.push(await new Wallet(key).signTypedData(domain, types, message));
}
const signers = (request.verify ?? []).map(({ domain, message, signature }) =>
  verifyTypedData(domain, types, message, signature),
);
process.stdout.write(JSON.stringify({ signatures, signers }) + '\n');
