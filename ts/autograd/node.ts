// One recorded operation on the tape.

import type { Tensor } from '../tensor/tensor';

export interface Node {
  /** A key of GRADIENTS (see ./gradients.ts). */
  op: string;
  /** The op's tensor inputs, in the order its gradient rule returns gradients. */
  inputs: (Tensor | null)[];
  /** Tensors the op made only for its backward (freed when the node is released). */
  owned: Tensor[];
  /** Non-tensor arguments the backward needs. */
  attrs: Record<string, unknown>;
  /** The output tensor (some rules read it, e.g. log-softmax). */
  output: Tensor;
}
