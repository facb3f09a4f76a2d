// Files that are either their old bytes or their new ones, even after a power loss: written
// to a temp file beside the target, flushed to the disk (fsync), renamed over the target, then
// the folder flushed so the rename itself is on the disk. Without the flushes a crash soon
// after a rename can leave the new name pointing at an empty or partial file.

import fs from 'node:fs';
import path from 'node:path';

/** The temp name `writeFileAtomic` uses for `file` (this process's). */
const tempOf = (file: string): string => path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);

/** Writes `parts` one after the other as `file`, atomically and durably (see above); a failed
 *  write leaves the target as it was and no temp file. */
export function writeFileAtomic(file: string, parts: (string | Uint8Array)[]): void {
  const tmp = tempOf(file);
  try {
    // A fresh file (O_EXCL), never a link someone left at the predictable temp name.
    fs.rmSync(tmp, { force: true });
    const fd = fs.openSync(tmp, 'wx');
    try {
      for (const p of parts) {
        const bytes = typeof p === 'string' ? Buffer.from(p, 'utf8') : p;
        for (let at = 0; at < bytes.byteLength; ) at += fs.writeSync(fd, bytes, at, Math.min(bytes.byteLength - at, 2 ** 30));
      }
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  const dir = fs.openSync(path.dirname(file), 'r');
  try {
    fs.fsyncSync(dir);
  } finally {
    fs.closeSync(dir);
  }
}
