// The data-parallel backbone, as torch DDP in arcface_torch: every rank starts from rank 0's
// weights and statistics, computes gradients on its own slice of the global batch and
// averages them; BatchNorm keeps per-rank batch statistics (no SyncBN).

import { Module } from '../nn/module';
import { Tensor, zeros } from '../tensor/tensor';
import { keep } from '../tensor/scope';
import { Communicator } from './comm';

const floatBuffers = (m: Module) => m.namedBuffers().map(([, t]) => t).filter((t) => t.dtype === 'f32');

/** Rank 0's parameters and float buffers (running statistics) to every rank. */
export function broadcastModule(comm: Communicator, m: Module): void {
  comm.broadcast([...m.parameters(), ...floatBuffers(m)], 0);
}

/** Rank 0's running statistics to every rank (before evaluating in eval mode, so every rank
 *  embeds as rank 0 would; training-mode forwards never read them). */
export function broadcastBuffers(comm: Communicator, m: Module): void {
  comm.broadcast(floatBuffers(m), 0);
}

/** Averages the gradients of the trainable `params` over the ranks in one bucket (one
 *  without a gradient on this rank contributes zeros, so every rank sends the same layout;
 *  frozen ones, like the embedding BN's scale, stay without). */
export function averageGradients(comm: Communicator, params: Tensor[]): void {
  if (comm.world === 1) return;
  const trainable = params.filter((p) => p.requiresGrad);
  for (const p of trainable) if (p.grad === null) p.grad = keep(zeros(p.shape, p.device));
  comm.allReduce(trainable.map((p) => p.grad!), 'mean');
}
