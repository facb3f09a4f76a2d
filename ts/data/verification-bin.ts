// InsightFace verification sets (`lfw.bin`, `cfp_fp.bin`, …): a pickle of
// `(list of encoded images, list of bools)`, pairs at images (2i, 2i+1). Read by a strict
// interpreter of exactly the opcodes that structure needs (Python 2 and 3 protocols); any
// other opcode — GLOBAL, REDUCE, BUILD, … which could run code — is refused, never executed.

import fs from 'node:fs';

export interface VerificationSet {
  /** Encoded images (JPEG/PNG bytes). */
  images: Buffer[];
  /** `issame[i]`: whether images 2i and 2i+1 show the same identity. */
  issame: boolean[];
}

type Value = Buffer | boolean | Value[] | { tuple: Value[] };
const MARK = Symbol('mark');

const NAMES: Record<number, string> = {
  0x63: 'GLOBAL', 0x93: 'STACK_GLOBAL', 0x52: 'REDUCE', 0x62: 'BUILD', 0x69: 'INST', 0x6f: 'OBJ',
  0x81: 'NEWOBJ', 0x92: 'NEWOBJ_EX', 0x4b: 'BININT1', 0x4a: 'BININT', 0x4d: 'BININT2', 0x58: 'BINUNICODE',
  0x8c: 'SHORT_BINUNICODE', 0x7d: 'EMPTY_DICT', 0x29: 'EMPTY_TUPLE', 0x4e: 'NONE', 0x47: 'BINFLOAT',
};

export function parseVerificationBin(data: Buffer, file = 'verification set'): VerificationSet {
  const stack: (Value | typeof MARK)[] = [];
  const memo = new Map<number, Value>();
  let at = 0;
  const fail = (why: string): never => {
    throw new Error(`${file}: not an InsightFace verification pickle: ${why}`);
  };
  const need = (n: number) => {
    if (at + n > data.length) fail(`truncated at byte ${at} (needs ${n} more of ${data.length})`);
  };
  const take = (n: number): Buffer => {
    need(n);
    const b = data.subarray(at, at + n);
    at += n;
    return b;
  };
  const u = (n: 1 | 4 | 8): number => {
    const b = take(n);
    return n === 1 ? b[0] : n === 4 ? b.readUInt32LE(0) : Number(b.readBigUInt64LE(0));
  };
  const pop = (): Value => {
    const v = stack.pop();
    if (v === undefined || v === MARK) return fail(`stack underflow at byte ${at}`);
    return v;
  };
  const popToMark = (): Value[] => {
    const i = stack.lastIndexOf(MARK);
    if (i < 0) fail(`no MARK before byte ${at}`);
    return stack.splice(i).slice(1) as Value[];
  };
  const top = (): Value => stack[stack.length - 1] as Value;
  const list = (v: Value | undefined): Value[] => (Array.isArray(v) ? v : fail(`APPEND to a non-list at byte ${at}`));
  for (;;) {
    const pos = at;
    const op = u(1);
    switch (op) {
      case 0x80: u(1); break; // PROTO
      case 0x95: u(8); break; // FRAME
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x28: stack.push(MARK); break;
      case 0x61: { const v = pop(); list(top()).push(v); break; } // APPEND
      case 0x65: { const vs = popToMark(); list(top()).push(...vs); break; } // APPENDS
      case 0x43: case 0x55: stack.push(Buffer.from(take(u(1)))); break; // SHORT_BINBYTES, SHORT_BINSTRING
      case 0x42: case 0x54: stack.push(Buffer.from(take(u(4)))); break; // BINBYTES, BINSTRING
      case 0x8e: stack.push(Buffer.from(take(u(8)))); break; // BINBYTES8
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x85: stack.push({ tuple: [pop()] }); break; // TUPLE1
      case 0x86: { const b = pop(); stack.push({ tuple: [pop(), b] }); break; } // TUPLE2
      case 0x74: stack.push({ tuple: popToMark() }); break; // TUPLE
      case 0x71: memo.set(u(1), top()); break; // BINPUT
      case 0x72: memo.set(u(4), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: case 0x6a: { // BINGET, LONG_BINGET
        const k = u(op === 0x68 ? 1 : 4);
        stack.push(memo.get(k) ?? fail(`memo key ${k} unset at byte ${pos}`));
        break;
      }
      case 0x2e: { // STOP
        const root = pop();
        const t = 'tuple' in (root as object) ? (root as { tuple: Value[] }).tuple : [];
        const [images, issame] = t;
        if (t.length !== 2 || !Array.isArray(images) || !Array.isArray(issame)) fail('expected a (images, issame) pair of lists');
        const imgs = images as Value[];
        const same = issame as Value[];
        if (!imgs.every((v) => Buffer.isBuffer(v))) fail('the first list must hold encoded images (bytes)');
        if (!same.every((v) => typeof v === 'boolean')) fail('the second list must hold booleans');
        if (imgs.length !== 2 * same.length) fail(`${imgs.length} images for ${same.length} pairs (expected ${2 * same.length})`);
        return { images: imgs as Buffer[], issame: same as boolean[] };
      }
      default:
        return fail(`opcode ${NAMES[op] ?? `0x${op.toString(16)}`} at byte ${pos} is not allowed (only lists of bytes and booleans are read; nothing is executed)`);
    }
  }
}

export function readVerificationBin(file: string): VerificationSet {
  return parseVerificationBin(fs.readFileSync(file), file);
}

/** Serialises a verification set as InsightFace does (a protocol-3 pickle of
 *  `(list of bytes, list of bools)`), readable by Python's pickle and by this parser. */
export function encodeVerificationBin(v: VerificationSet): Buffer {
  if (v.images.length !== 2 * v.issame.length) {
    throw new Error(`verification set: ${v.images.length} images for ${v.issame.length} pairs (expected ${2 * v.issame.length})`);
  }
  const parts: Buffer[] = [Buffer.from([0x80, 3, 0x5d, 0x28])]; // PROTO 3, EMPTY_LIST, MARK
  for (const img of v.images) {
    const len = Buffer.alloc(img.length < 256 ? 1 : 4);
    if (img.length < 256) len[0] = img.length;
    else len.writeUInt32LE(img.length);
    parts.push(Buffer.from([img.length < 256 ? 0x43 : 0x42]), len, img); // SHORT_BINBYTES / BINBYTES
  }
  parts.push(Buffer.from([0x65, 0x5d, 0x28]), Buffer.from(v.issame.map((s) => (s ? 0x88 : 0x89))), Buffer.from([0x65, 0x86, 0x2e]));
  return Buffer.concat(parts);
}
