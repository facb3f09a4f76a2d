// Modules own parameters and buffers (kept out of tidy scopes) and children, named as in
// PyTorch's state dicts (`layer1.0.bn1.weight`), so checkpoints map one to one.

import { Tensor } from '../tensor/tensor';
import { keep } from '../tensor/scope';
import { native } from '../native';

export abstract class Module {
  training = true;
  private readonly params = new Map<string, Tensor>();
  private readonly buffers = new Map<string, Tensor>();
  private readonly children = new Map<string, Module>();

  abstract forward(x: Tensor): Tensor;

  protected param(name: string, t: Tensor): Tensor {
    this.params.set(name, keep(t).requireGrad());
    return t;
  }

  protected buffer(name: string, t: Tensor): Tensor {
    this.buffers.set(name, keep(t));
    return t;
  }

  protected child<M extends Module>(name: string, m: M): M {
    this.children.set(name, m);
    return m;
  }

  /** Parameters with their dotted names, depth first in registration order. */
  namedParameters(prefix = ''): [string, Tensor][] {
    const own = [...this.params].map(([k, v]): [string, Tensor] => [prefix + k, v]);
    return own.concat(...[...this.children].map(([k, c]) => c.namedParameters(`${prefix}${k}.`)));
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  namedBuffers(prefix = ''): [string, Tensor][] {
    const own = [...this.buffers].map(([k, v]): [string, Tensor] => [prefix + k, v]);
    return own.concat(...[...this.children].map(([k, c]) => c.namedBuffers(`${prefix}${k}.`)));
  }

  /** Copies every parameter and buffer from `state` (PyTorch names). Refuses, listing every
   *  difference, when names are missing or shapes differ; `strict` also refuses extra names. */
  loadStateDict(state: Map<string, Tensor>, { strict = true } = {}): void {
    const own = new Map([...this.namedParameters(), ...this.namedBuffers()]);
    const problems: string[] = [];
    for (const [k, t] of own) {
      const src = state.get(k);
      if (src === undefined) problems.push(`missing ${k} [${t.shape.join(', ')}]`);
      else if (src.shape.join() !== t.shape.join()) problems.push(`${k}: shape [${src.shape.join(', ')}] in the state, [${t.shape.join(', ')}] in the model`);
    }
    if (strict) for (const k of state.keys()) if (!own.has(k)) problems.push(`unexpected ${k}`);
    if (problems.length > 0) throw new Error(`loadStateDict: the state does not fit the model:\n  ${problems.join('\n  ')}`);
    for (const [k, t] of own) native.copyInto(t.handle('loadStateDict'), state.get(k)!.handle('loadStateDict'));
  }

  train(flag = true): this {
    this.training = flag;
    this.children.forEach((c) => c.train(flag));
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Frees every parameter, gradient and buffer. */
  dispose(): void {
    this.params.forEach((t) => t.dispose());
    this.buffers.forEach((t) => t.dispose());
    this.children.forEach((c) => c.dispose());
  }
}
