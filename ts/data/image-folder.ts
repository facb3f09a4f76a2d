// An image folder as a dataset: one sub-folder per identity (sorted names → labels 0, 1, …),
// JPEG/PNG files inside.

import fs from 'node:fs';
import path from 'node:path';

export interface FolderDataset {
  root: string;
  /** Identity folder names; label i is identities[i]. */
  identities: string[];
  files: string[];
  labels: number[];
}

const IMAGE = /\.(jpe?g|png)$/i;

export function readImageFolder(root: string): FolderDataset {
  if (!fs.existsSync(root) || !fs.statSync(root).isDirectory()) throw new Error(`${root}: not a folder of identity folders`);
  const identities = fs
    .readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
  if (identities.length === 0) throw new Error(`${root}: no identity folders (expected one sub-folder per identity)`);
  const files: string[] = [];
  const labels: number[] = [];
  identities.forEach((name, label) => {
    const dir = path.join(root, name);
    const imgs = fs.readdirSync(dir).filter((f) => IMAGE.test(f)).sort();
    if (imgs.length === 0) throw new Error(`${dir}: identity folder without images (.jpg, .jpeg, .png)`);
    for (const f of imgs) {
      files.push(path.join(dir, f));
      labels.push(label);
    }
  });
  return { root, identities, files, labels };
}
