// Compiles src/TestToken.sol with solc-js (standard JSON API) and writes
// build/TestToken.abi, build/TestToken.bin and build/TestToken.json.
// Run through `make contracts`; the outputs are committed so Go tests need no Node.
'use strict';
const fs = require('fs');
const path = require('path');
const solc = require('solc');

const name = 'TestToken';
const srcPath = path.join(__dirname, 'src', name + '.sol');
const outDir = path.join(__dirname, 'build');

const input = {
  language: 'Solidity',
  sources: { [name + '.sol']: { content: fs.readFileSync(srcPath, 'utf8') } },
  settings: {
    optimizer: { enabled: true, runs: 200 },
    // Metadata hash off: the bytecode then depends only on source and compiler version.
    metadata: { bytecodeHash: 'none' },
    outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
  },
};

const output = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (output.errors || []).filter((e) => e.severity === 'error');
for (const e of output.errors || []) {
  process.stderr.write(e.formattedMessage + '\n');
}
if (errors.length > 0) {
  process.exit(1);
}
const c = output.contracts[name + '.sol'][name];
fs.mkdirSync(outDir, { recursive: true });
fs.writeFileSync(path.join(outDir, name + '.abi'), JSON.stringify(c.abi, null, 2) + '\n');
fs.writeFileSync(path.join(outDir, name + '.bin'), c.evm.bytecode.object + '\n');
fs.writeFileSync(
  path.join(outDir, name + '.json'),
  JSON.stringify({ contractName: name, compiler: 'solc-js ' + solc.version(), abi: c.abi,
    bytecode: '0x' + c.evm.bytecode.object, deployedBytecode: '0x' + c.evm.deployedBytecode.object }, null, 2) + '\n',
);
process.stdout.write('compiled ' + name + ' with solc ' + solc.version() + '\n');
