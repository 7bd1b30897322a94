// Compiles chain/contracts/*.sol with the pinned solc (npm, see scripts/chain-tools.sh) and
// writes one artifact per contract: OUT_DIR/<Name>.json with its ABI, creation and runtime
// bytecode and the compiler settings. The contracts in chain/contracts/test/ (test-only, such as
// the ERC-20 of the ERC-20 tests) are compiled apart, into OUT_DIR/test/, so that they can never
// change the production artifacts. Imports of `@openzeppelin/...` resolve in NODE_PATH (the
// pinned @openzeppelin/contracts); only the contracts of the compiled files get artifacts, not
// those of the files they import. The output is deterministic (same sources, same bytes), so a
// test recompiles and compares it with the committed artifacts.
//
//   node compile_contracts.mjs CONTRACTS_DIR OUT_DIR
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const modules = process.env.NODE_PATH;
const require = createRequire(path.join(modules, "noop.js"));
const solc = require("solc");

const [contractsDir, outDir] = process.argv.slice(2);
const settings = {
  optimizer: { enabled: true, runs: 10000 },
  evmVersion: "cancun",
  metadata: { bytecodeHash: "none" },
  outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
};

// Resolves an import that is not one of the compiled sources: only npm packages under NODE_PATH
// (`@openzeppelin/contracts/...`), never a path outside it.
function findImports(importPath) {
  if (!importPath.startsWith("@openzeppelin/")) {
    return { error: `import ${importPath}: only @openzeppelin/... packages are resolved` };
  }
  const file = path.resolve(modules, importPath);
  if (!file.startsWith(path.resolve(modules) + path.sep)) {
    return { error: `import ${importPath} leaves the npm modules` };
  }
  try {
    return { contents: fs.readFileSync(file, "utf8") };
  } catch (e) {
    return { error: `import ${importPath}: ${e.message}` };
  }
}

// Compiles the .sol files directly in `dir` (source names `prefix + file`) into `out`.
function compileDir(dir, prefix, out) {
  const sources = {};
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith(".sol")).sort()) {
    sources[prefix + file] = { content: fs.readFileSync(path.join(dir, file), "utf8") };
  }
  if (Object.keys(sources).length === 0) return;
  const input = JSON.stringify({ language: "Solidity", sources, settings });
  const output = JSON.parse(solc.compile(input, { import: findImports }));
  const errors = (output.errors || []).filter((e) => e.severity === "error");
  // Warnings about the pinned OpenZeppelin sources (its transient-storage notice) are theirs.
  const ours = (e) => e.severity === "error" || !e.sourceLocation?.file?.startsWith("@openzeppelin/");
  for (const e of (output.errors || []).filter(ours)) console.error(e.formattedMessage);
  if (errors.length > 0) process.exit(1);

  fs.mkdirSync(out, { recursive: true });
  for (const file of Object.keys(sources)) {
    for (const [name, contract] of Object.entries(output.contracts[file] || {})) {
      const artifact = {
        contractName: name,
        sourceName: file,
        compiler: { version: solc.version(), settings: { ...settings, outputSelection: undefined } },
        abi: contract.abi,
        bytecode: { object: "0x" + contract.evm.bytecode.object },
        deployedBytecode: { object: "0x" + contract.evm.deployedBytecode.object },
      };
      fs.writeFileSync(path.join(out, `${name}.json`), JSON.stringify(artifact, null, 2) + "\n");
      console.error(`compiled ${file}:${name}`);
    }
  }
}

compileDir(contractsDir, "", outDir);
const testDir = path.join(contractsDir, "test");
if (fs.existsSync(testDir)) compileDir(testDir, "test/", path.join(outDir, "test"));
