// Modules own parameters and buffers (kept out of tidy scopes) and children, named as in
// PyTorch's state dicts (`layer1.0.bn1.weight`), so checkpoints map one to one.

import { Tensor } from '../tensor/tensor';
import { keep } from '../tensor/scope';

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
