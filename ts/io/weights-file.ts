// Weights files by extension, wherever weights are accepted: `.pt` / `.pth` are torch.save
// state dicts; every other name is safetensors, as before.

import path from 'node:path';
import { readSafetensors, StEntry, StFile, writeSafetensors } from './safetensors';
import { readTorchCheckpoint, writeTorchCheckpoint } from './torch-checkpoint';

export const TORCH_EXTENSIONS: readonly string[] = ['.pt', '.pth'];

export function isTorchFile(file: string): boolean {
  return TORCH_EXTENSIONS.includes(path.extname(file).toLowerCase());
}

/** An ONNX model (ts/export/onnx-import.ts reads an IResNet's weights from it). */
export function isOnnxFile(file: string): boolean {
  return path.extname(file).toLowerCase() === '.onnx';
}

export interface WeightsFile extends StFile {
  /** What reading did beyond copying, in words (empty for safetensors). */
  notes: string[];
}

export function readWeightsFile(file: string): WeightsFile {
  return isTorchFile(file) ? readTorchCheckpoint(file) : { ...readSafetensors(file), notes: [] };
}

/** Writes by extension; a `.pt` state dict has no place for `metadata`, which it drops. */
export function writeWeightsFile(file: string, tensors: Map<string, StEntry>, metadata: Record<string, string> = {}): void {
  if (isTorchFile(file)) writeTorchCheckpoint(file, tensors);
  else writeSafetensors(file, tensors, metadata);
}
