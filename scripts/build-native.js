#!/usr/bin/env node
// Makes sure native/maskfr.<platform>.node exists and loads: keeps a prebuilt binary that
// loads, otherwise builds crates/node with cargo (release) and copies the library there.
// Run by binding.gyp during `npm install`; `--force` rebuilds regardless.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.join(__dirname, '..');
const libc = process.platform === 'linux' ? (process.report?.getReport().header.glibcVersionRuntime ? '-gnu' : '-musl') : '';
const tag = `${process.platform}-${process.arch}${libc}`;
const addon = path.join(root, 'native', `maskfr.${tag}.node`);
const args = process.argv.slice(2);
const stamp = args.includes('--stamp') ? args[args.indexOf('--stamp') + 1] : null;

function done(msg) {
  console.log(`maskfr: ${msg}`);
  if (stamp) fs.writeFileSync(stamp, `${msg}\n`);
  process.exit(0);
}

function fail(msg) {
  console.error(`maskfr: ${msg}`);
  process.exit(1);
}

if (fs.existsSync(addon) && !args.includes('--force')) {
  try {
    require(addon);
    done(`prebuilt native addon ${path.relative(root, addon)} loads; nothing to build`);
  } catch (e) {
    console.warn(`maskfr: ${path.relative(root, addon)} does not load here (${e.message}); rebuilding from source`);
  }
}
if (!fs.existsSync(path.join(root, 'Cargo.toml'))) {
  fail(`no prebuilt native addon for ${tag} in this package and no Rust sources to build one`);
}
if (spawnSync('cargo', ['--version'], { stdio: 'ignore' }).status !== 0) {
  fail(`no prebuilt native addon for ${tag}; building one needs a Rust toolchain (cargo on PATH, e.g. from https://rustup.rs)`);
}
const build = spawnSync('cargo', ['build', '--release', '-p', 'maskfr-node'], { cwd: root, stdio: 'inherit' });
if (build.status !== 0) fail(`cargo build failed (exit ${build.status})`);
const ext = { darwin: 'dylib', win32: 'dll' }[process.platform] ?? 'so';
const lib = path.join(root, 'target', 'release', `${process.platform === 'win32' ? '' : 'lib'}maskfr_node.${ext}`);
fs.mkdirSync(path.dirname(addon), { recursive: true });
fs.copyFileSync(lib, addon);
done(`built ${path.relative(root, addon)} from source`);
