// `maskfr convert IN OUT`: weights between PyTorch (`.pt` / `.pth`, torch.save) and
// safetensors, either way, chosen by the files' extensions.

import { readWeightsFile, isTorchFile, writeWeightsFile } from '../io/weights-file';
import { Command, Parsed } from './args';

export const convert: Command = {
  summary: 'convert weights between PyTorch .pt/.pth (torch.save; read without running its pickle) and safetensors, either way, by extension',
  usage: 'maskfr convert IN OUT',
  options: [],
  example: 'maskfr convert arcface_torch/ms1mv3_r100/model.pt r100.safetensors',
  run: convertWeights,
};

function convertWeights(p: Parsed): number {
  const [input, output, ...extra] = p.positional;
  if (output === undefined || extra.length > 0) throw new Error(`convert: usage: ${convert.usage}`);
  const st = readWeightsFile(input);
  // A safetensors written here reads like saveCheckpoint's (format 'pt': PyTorch's names).
  const metadata = isTorchFile(input) ? { format: 'pt' } : st.metadata;
  const dropped = isTorchFile(output) ? Object.keys(metadata).filter((k) => k !== 'format') : [];
  writeWeightsFile(output, st.tensors, metadata);
  const bytes = [...st.tensors.values()].reduce((a, e) => a + e.data.byteLength, 0);
  const notes = [...st.notes, ...(dropped.length > 0 ? [`metadata ${dropped.join(', ')} not carried (a .pt state dict has no place for it)`] : [])];
  console.log(`wrote ${output}: ${st.tensors.size} tensors, ${(bytes / 2 ** 20).toFixed(2)} MiB${notes.map((n) => `; ${n}`).join('')}`);
  return 0;
}
