import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../ts';

test('a recipe that is a folder, or whose code throws, is an error naming the recipe', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'maskfr-config-'));
  t.throws(() => loadConfig(dir), { message: `config ${dir}: a folder, expected a .ts, .js or .json recipe file` });
  const js = path.join(dir, 'broken.js');
  fs.writeFileSync(js, 'module.exports = { network: notDefinedAnywhere };\n');
  t.throws(() => loadConfig(js), { message: `config ${js}: loading it failed: notDefinedAnywhere is not defined` });
  const json = path.join(dir, 'cut.json');
  fs.writeFileSync(json, '{"network": "tiny", "da');
  t.throws(() => loadConfig(json), { message: new RegExp(`^config ${json}: not valid JSON`) });
});
