// Define-by-run autograd: ops call `record`, `backward` walks the tape in reverse topological
// order, applies the rules of ./gradients, accumulates leaf gradients and releases each node
// (its saved tensors) as soon as it has been differentiated.

import { native } from '../native';
import { Tensor, ones } from '../tensor/tensor';
import { isGradEnabled, keep, noGrad } from '../tensor/scope';
import { GRADIENTS, OpName } from './gradients';

/** Puts `out` on the tape when recording is on and some input requires grad. `owned` are
 *  tensors the op made only for its backward; they are freed with the node. */
export function record(
  out: Tensor,
  op: OpName,
  inputs: (Tensor | null)[],
  attrs: Record<string, unknown> = {},
  owned: Tensor[] = [],
): Tensor {
  if (isGradEnabled() && inputs.some((t) => t?.requiresGrad)) {
    out.requiresGrad = true;
    out.recorded = true;
    out.node = { op, inputs, owned: owned.map(keep), attrs, output: out };
  } else {
    owned.forEach((t) => t.dispose());
  }
  return out;
}

function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const visited = new Set<Tensor>();
  const stack: [Tensor, boolean][] = [[root, false]];
  while (stack.length > 0) {
    const [t, expanded] = stack.pop()!;
    if (expanded) {
      order.push(t);
      continue;
    }
    if (visited.has(t)) continue;
    visited.add(t);
    stack.push([t, true]);
    for (const inp of t.node?.inputs ?? []) if (inp?.requiresGrad && !visited.has(inp)) stack.push([inp, false]);
  }
  return order.reverse();
}

function release(t: Tensor): void {
  t.node?.owned.forEach((o) => o.dispose());
  t.node = null;
}

/** Differentiates `root` (a one-element tensor, or with an explicit `grad` of its shape). */
export function backward(root: Tensor, grad?: Tensor): void {
  if (!root.requiresGrad) {
    throw new Error('backward: this tensor does not require grad (no input of it required grad, or it was made under noGrad)');
  }
  if (grad === undefined && root.numel !== 1) {
    throw new Error(`backward: a gradient is needed for a non-scalar output of shape [${root.shape.join(', ')}]`);
  }
  if (grad !== undefined && grad.shape.join() !== root.shape.join()) {
    throw new Error(`backward: gradient shape [${grad.shape.join(', ')}] differs from output shape [${root.shape.join(', ')}]`);
  }
  noGrad(() => {
    const seed = grad ? new Tensor(native.scale(grad.handle('backward'), 1)) : ones(root.shape, root.device);
    const grads = new Map<Tensor, Tensor>([[root, seed]]);
    for (const t of topoOrder(root)) {
      const g = grads.get(t);
      if (g === undefined) continue;
      grads.delete(t);
      if (t.node === null) {
        if (t.recorded) throw new Error('backward: this graph was already released by an earlier backward()');
        accumulateLeaf(t, g);
        continue;
      }
      const ins = GRADIENTS[t.node.op as OpName](t.node, g);
      let passedOn = false;
      t.node.inputs.forEach((inp, i) => {
        const gi = ins[i];
        if (!gi) return;
        if (!inp?.requiresGrad) {
          if (gi !== g) gi.dispose();
          return;
        }
        const prev = grads.get(inp);
        if (prev === undefined) {
          grads.set(inp, gi);
          passedOn ||= gi === g;
          return;
        }
        grads.set(inp, new Tensor(native.add(prev.handle('backward'), gi.handle('backward'))));
        prev.dispose();
        if (gi !== g) gi.dispose();
      });
      if (!passedOn) g.dispose();
      release(t);
    }
  });
}

type LeafHook = (t: Tensor) => void;
let leafHook: LeafHook | null = null;

/** Calls `hook` each time a leaf receives gradient during backward (gradient buckets start
 *  their all-reduce as soon as they are full); null removes it. */
export function onLeafGradient(hook: LeafHook | null): void {
  leafHook = hook;
}

function accumulateLeaf(t: Tensor, g: Tensor): void {
  accumulate(t, g);
  leafHook?.(t);
}

function accumulate(t: Tensor, g: Tensor): void {
  if (g.shape.join() !== t.shape.join()) {
    throw new Error(`backward: gradient of shape [${g.shape.join(', ')}] for a leaf of shape [${t.shape.join(', ')}]`);
  }
  if (t.grad === null) {
    t.grad = keep(g);
    return;
  }
  native.addScaledInto(t.grad.handle('backward'), g.handle('backward'), 1);
  g.dispose();
}
