// The MFR challenge kit's submission rules (insightface challenges/iccv21-mfr, onnx_helper.py's
// check), read from an ONNX file: what the kit would refuse, or misread, each in words.

import fs from 'node:fs';
import { OnnxFile, readOnnx, typeName } from './onnx-read';

const MAX_BYTES = 1024 * 1024 * 1024;
const MAX_FEATURE = 512;
/** The kit looks for the normalisation among the first nodes, by their names. */
const FIRST_NODES = 8;

/** Item sizes under 4 bytes, which the kit refuses (f16, bf16, int8 weights). */
const NARROW = new Set([2, 3, 4, 5, 9, 10, 16]);

/** Every rule of the kit `f` breaks; empty when it passes them all. `totalBytes` counts the
 *  .onnx with its external data. */
export function mfrKitProblems(f: OnnxFile, totalBytes = f.size): string[] {
  const problems: string[] = [];
  if (totalBytes > MAX_BYTES) problems.push(`the model takes ${(totalBytes / 2 ** 20).toFixed(1)} MB, over the kit's 1024 MB`);
  if (f.outputs.length !== 1) problems.push(`${f.outputs.length} outputs (${f.outputs.map((o) => o.name).join(', ')}); the kit takes one`);
  const dim = f.outputs[0]?.dims[1];
  if (typeof dim === 'number' && dim > MAX_FEATURE) problems.push(`a ${dim}-d feature, over the kit's ${MAX_FEATURE}`);
  const input = f.inputs[0];
  if (input === undefined || input.dims.length !== 4 || input.dims[2] !== 112 || input.dims[3] !== 112) problems.push(`input [${input?.dims.join(', ') ?? ''}]; the kit feeds [N, 3, 112, 112]`);
  const narrow = [...f.initializers.values()].filter((t) => NARROW.has(t.dataType));
  if (narrow.length > 0) problems.push(`${narrow.length} initializers narrower than f32 (${narrow.slice(0, 3).map((t) => `${t.name}: ${typeName(t.dataType)}`).join(', ')}); the kit takes f32 weights`);
  // The kit feeds raw 0–255 pixels when it finds nodes named Sub… and Mul… among the first,
  // and (x − 127.5)/127.5 otherwise; the graph must agree with what the names tell it.
  const first = f.nodes.slice(0, FIRST_NODES);
  const named = (p: string[]) => first.some((n) => p.some((q) => n.name.startsWith(q)));
  const kitFeedsRaw = named(['Sub', '_minus']) && named(['Mul', '_mul']);
  const normalises = first.some((n) => n.op === 'Sub') && first.some((n) => n.op === 'Mul') && first.some((n) => n.inputs.includes(input?.name ?? ''));
  if (normalises && !kitFeedsRaw) problems.push(`the graph normalises its input, but no node among the first ${FIRST_NODES} is named Sub…/Mul…: the kit would feed it (x − 127.5)/127.5 instead of 0–255 pixels`);
  if (!normalises && kitFeedsRaw) problems.push(`nodes named Sub…/Mul… among the first ${FIRST_NODES} make the kit feed 0–255 pixels, but the graph does not normalise them`);
  return problems;
}

/** The kit's rules checked on an ONNX file (with its external data files' sizes). */
export function checkMfrKit(file: string, dataFiles: string[] = []): string[] {
  return mfrKitProblems(readOnnx(file), fs.statSync(file).size + dataFiles.reduce((s, d) => s + fs.statSync(d).size, 0));
}
