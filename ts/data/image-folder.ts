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

/** The largest image file read whole, as the training loader's (maskfr_io::image_codec::
 *  MAX_FILE_BYTES): a 4096² RGB image stored uncompressed is 48 MiB. */
export const MAX_IMAGE_FILE_BYTES = 64 * 2 ** 20;

/** An image file's bytes, its size checked before anything is read (a 10 GB file named
 *  .jpg is refused, naming it); at most the size stat gave. */
export function readImageFile(file: string): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    if (size > MAX_IMAGE_FILE_BYTES) throw new Error(`${file}: ${size} bytes, more than an image file may have (${MAX_IMAGE_FILE_BYTES / 2 ** 20} MiB)`);
    const bytes = Buffer.alloc(size);
    for (let at = 0, n = 1; at < size && n > 0; at += n) n = fs.readSync(fd, bytes, at, size - at, at);
    return bytes;
  } finally {
    fs.closeSync(fd);
  }
}

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
