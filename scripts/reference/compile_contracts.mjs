// Compiles every chain/contracts/*.sol with the pinned solc (npm, see scripts/chain-tools.sh)
// and writes one artifact per contract: chain/artifacts/<Name>.json with its ABI, creation and
// runtime bytecode and the compiler settings. The output is deterministic (same sources, same
// bytes), so a test recompiles and compares it with the committed artifacts.
//
//   node compile_contracts.mjs CONTRACTS_DIR OUT_DIR
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const require = createRequire(path.join(process.env.NODE_PATH, "noop.js"));
const solc = require("solc");

const [contractsDir, outDir] = process.argv.slice(2);
const settings = {
  optimizer: { enabled: true, runs: 10000 },
  evmVersion: "cancun",
  metadata: { bytecodeHash: "none" },
  outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
};
const sources = {};
for (const file of fs.readdirSync(contractsDir).filter((f) => f.endsWith(".sol")).sort()) {
  sources[file] = { content: fs.readFileSync(path.join(contractsDir, file), "utf8") };
}
const output = JSON.parse(solc.compile(JSON.stringify({ language: "Solidity", sources, settings })));
const errors = (output.errors || []).filter((e) => e.severity === "error");
for (const e of output.errors || []) console.error(e.formattedMessage);
if (errors.length > 0) process.exit(1);

fs.mkdirSync(outDir, { recursive: true });
for (const file of Object.keys(output.contracts).sort()) {
  for (const [name, contract] of Object.entries(output.contracts[file])) {
    const artifact = {
      contractName: name,
      sourceName: file,
      compiler: { version: solc.version(), settings: { ...settings, outputSelection: undefined } },
      abi: contract.abi,
      bytecode: { object: "0x" + contract.evm.bytecode.object },
      deployedBytecode: { object: "0x" + contract.evm.deployedBytecode.object },
    };
    fs.writeFileSync(path.join(outDir, `${name}.json`), JSON.stringify(artifact, null, 2) + "\n");
    console.error(`compiled ${file}:${name}`);
  }
}
