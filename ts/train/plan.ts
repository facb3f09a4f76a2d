// The memory planner: per-GPU bytes of a training run from its configuration alone —
// parameters, gradients, optimiser state, the activations a step keeps for its backward
// (per stage, with or without checkpointing), the classifier shard and its logits — whether
// that fits a card, and with a measured rate, the wall time of N epochs of WebFace42M.

import { modelConfig } from '../models/iresnet';
import { blockShapes, complexity } from '../models/complexity';
import { DEFAULT_CHUNK } from '../losses/sharded';

export const WEBFACE42M_IMAGES = 42_474_557;

export interface PlanInput {
  model: string;
  classes: number;
  gpus: number;
  /** Images per GPU per step. */
  batch: number;
  sampleRate?: number;
  fp16?: boolean;
  checkpointing?: boolean;
  embedding?: number;
  /** Classes scored at a time in our classifier (0: all). */
  chunk?: number;
  /** The card's memory, for the fits verdict. */
  cardGiB?: number;
  /** A measured training rate of the whole run (images per second, all GPUs). */
  imagesPerSecond?: number;
  epochs?: number;
  images?: number;
}

export interface Plan {
  params: number;
  /** Bytes per GPU. */
  parameters: number;
  gradients: number;
  optimizer: number;
  activations: number;
  classifier: number;
  /** Our chunked logits, and what an unchunked classifier (arcface_torch's) holds. */
  logits: number;
  logitsUnchunked: number;
  total: number;
  /** CUDA context, cuDNN/cuBLAS workspaces: a fixed allowance. */
  overhead: number;
  fits: boolean | null;
  hours: number | null;
}

const OVERHEAD = 1.5 * 2 ** 30;

/** Activation bytes per image at the step's peak: what the forward keeps for the backward
 *  (element counts × `bytes`), plus two gradient tensors of the largest activation in
 *  flight during the backward. */
export function activationBytes(model: string, { fp16 = false, checkpointing = false, embedding }: { fp16?: boolean; checkpointing?: boolean; embedding?: number } = {}): number {
  const c = modelConfig(model, embedding === undefined ? {} : { embedding });
  const bytes = fp16 ? 2 : 4;
  const side0 = c.inputSize;
  // Stem: the input, conv out, BN out (PReLU's input), PReLU out.
  let kept = 3 * side0 * side0 + 3 * c.widths[0] * side0 * side0;
  let largest = c.widths[0] * side0 * side0;
  let largestBlock = 0;
  const shapes = blockShapes(c);
  for (const { cin, planes, inSide, midSide, outSide, shortcut } of shapes) {
    // conv1's input (bn1 out), conv1 out, bn2 out, PReLU out, conv2 out; the shortcut conv's
    // output when there is one. The block input is kept by bn1; the block output is the
    // next block's input.
    const input = cin * inSide * inSide;
    const inside = input + 4 * planes * midSide * midSide + (shortcut ? planes * outSide * outSide : 0);
    largest = Math.max(largest, input, planes * midSide * midSide);
    largestBlock = Math.max(largestBlock, input + inside);
    kept += checkpointing ? input : input + inside;
  }
  const side = shapes.at(-1)?.outSide ?? side0;
  // Checkpointing keeps block inputs, plus one block's recomputed intermediates at a time.
  if (checkpointing) kept += largestBlock;
  // Head: the trunk output, BN2 out (flattened into fc), fc out (features BN's input).
  kept += 2 * c.widths[3] * side * side + c.embedding;
  return (kept + 2 * largest) * bytes;
}

/** What a plan assumes unless told: every class scored, the classifier's chunk, the
 *  report's 20 epochs. */
export const PLAN_DEFAULTS = { sampleRate: 1, chunk: DEFAULT_CHUNK, epochs: 20 } as const;

export function plan(p: PlanInput): Plan {
  const { sampleRate = PLAN_DEFAULTS.sampleRate, chunk = PLAN_DEFAULTS.chunk, epochs = PLAN_DEFAULTS.epochs } = p;
  const { fp16 = false, checkpointing = false, images = WEBFACE42M_IMAGES } = p;
  const embedding = p.embedding ?? modelConfig(p.model).embedding;
  const params = complexity(modelConfig(p.model, { embedding })).params;
  // fp32 master weights (and an fp16 copy for the forward under fp16), fp32 gradients and momentum.
  const parameters = params * (fp16 ? 6 : 4);
  const gradients = params * 4;
  const optimizer = params * 4;
  const activations = p.batch * activationBytes(p.model, { fp16, checkpointing, embedding });
  const shard = Math.ceil(p.classes / p.gpus);
  const classifier = 3 * shard * embedding * 4; // weight, gradient, momentum in fp32
  const scored = Math.ceil(sampleRate * shard);
  const global = p.batch * p.gpus;
  // Ours: f32 cosines, f64 logits and f32 gradients of one chunk at a time.
  const logits = global * (chunk === 0 ? scored : Math.min(chunk, scored)) * (4 + 8 + 4);
  // Unchunked (arcface_torch): logits, their softmax, its gradient and the margin/one-hot
  // working copy, each B × ρ·n_r in f32.
  const logitsUnchunked = global * scored * 4 * 4;
  const total = parameters + gradients + optimizer + activations + classifier + logits + OVERHEAD;
  const fits = p.cardGiB === undefined ? null : total <= p.cardGiB * 2 ** 30;
  const hours = p.imagesPerSecond === undefined ? null : (epochs * images) / p.imagesPerSecond / 3600;
  return { params, parameters, gradients, optimizer, activations, classifier, logits, logitsUnchunked, total, overhead: OVERHEAD, fits, hours };
}
