// maskfr's public API.

export { Tensor, tensor, full, zeros, ones } from './tensor/tensor';
export type { DType, Shape } from './tensor/tensor';
export { tidy, keep, noGrad, isGradEnabled } from './tensor/scope';
export { manualSeed, nextSeed, randn, randUniform } from './tensor/random';
export { memoryStats, resetPeakMemory } from './tensor/memory';
export type { MemoryStats } from './tensor/memory';
export * as ops from './tensor/ops';
export { Module } from './nn/module';
export * as nn from './nn/layers';
export { SGD } from './optim/sgd';
export type { SGDOptions } from './optim/sgd';
export { systemInfo } from './system';
export type { SystemInfo } from './system';
export { readSafetensors, writeSafetensors, entryValues } from './io/safetensors';
export type { StEntry, StFile, StDType } from './io/safetensors';
export { createModel, modelConfig, MODELS, IResNet, IBasicBlock, EmbeddingHead } from './models/iresnet';
export type { IResNetConfig, StridePlacement } from './models/iresnet';
export { complexity } from './models/complexity';
export type { Complexity } from './models/complexity';
export { saveCheckpoint, loadCheckpoint, stateShapes } from './models/checkpoint';
export { foldBatchNorm, FoldedIResNet, FoldedBlock } from './models/fold';
export { exportIResNet } from './export/iresnet-onnx';
export type { OnnxModel } from './export/iresnet-onnx';
export { IResNetMoE, createMoE } from './models/moe';
