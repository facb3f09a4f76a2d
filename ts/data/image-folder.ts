// An image folder as a dataset: one sub-folder per identity (sorted names → labels 0, 1, …),
// JPEG/PNG files inside. The scan and its (path, label) index live in Rust (maskfr_io::folder):
// WebFace42M's 42 million paths are not strings on the JS heap; this holds a handle.

import { native } from '../native';

/** The largest image file read whole, as the training loader's (maskfr_io::image_codec::
 *  MAX_FILE_BYTES): a 4096² RGB image stored uncompressed is 48 MiB. */
export const MAX_IMAGE_FILE_BYTES = 64 * 2 ** 20;

export class FolderDataset {
  private constructor(
    readonly root: string,
    /** The Rust index, for the loader. */
    readonly handle: ReturnType<typeof native.ImageFolder.scan>,
  ) {}

  static scan(root: string): FolderDataset {
    return new FolderDataset(root, native.ImageFolder.scan(root));
  }

  get length(): number {
    return this.handle.length;
  }

  /** Identities; labels are 0 … identities − 1. */
  get identities(): number {
    return this.handle.identities;
  }

  /** Identity `label`'s folder name. */
  identity(label: number): string {
    return this.handle.identity(label);
  }

  path(i: number): string {
    return this.handle.path(i);
  }

  /** Image `i`'s label and bytes, the file's size checked before it is read (a 10 GB file
   *  named .jpg is refused, naming it). */
  sample(i: number): { label: number; body: Buffer } {
    return this.handle.read(i);
  }
}

export function readImageFolder(root: string): FolderDataset {
  return FolderDataset.scan(root);
}
