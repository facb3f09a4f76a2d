// Modules own parameters and buffers (kept out of tidy scopes) and children, named as in
// PyTorch's state dicts (`layer1.0.bn1.weight`), so checkpoints map one to one.

import { Tensor } from '../tensor/tensor';
import { keep } from '../tensor/scope';
import { native } from '../native';

export abstract class Module {
  training = true;
  /** Set by freeze(): train() leaves the module in evaluation mode. */
  private frozen = false;
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

  /** This module and every descendant with its dotted name ('' for this one). */
  namedModules(prefix = ''): [string, Module][] {
    const own: [string, Module][] = [[prefix.replace(/\.$/, ''), this]];
    return own.concat(...[...this.children].map(([k, c]) => c.namedModules(`${prefix}${k}.`)));
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
    const shapes = (m: Map<string, Tensor>) => new Map([...m].map(([k, t]) => [k, t.shape]));
    const problems = stateDifferences(shapes(own), shapes(state), 'state', strict);
    if (problems.length > 0) throw new Error(`loadStateDict: the state does not fit the model:\n  ${problems.join('\n  ')}`);
    for (const [k, t] of own) native.copyInto(t.handle('loadStateDict'), state.get(k)!.handle('loadStateDict'));
  }

  /** Where the parameters live ('cpu' for a module without any). */
  get device(): string {
    return this.parameters()[0]?.device ?? 'cpu';
  }

  /** Moves every parameter and buffer to `device` ('cpu', 'cuda:N') in place. */
  to(device: string): this {
    [...this.namedParameters(), ...this.namedBuffers()].forEach(([, t]) => t.moveTo_(device));
    return this;
  }

  train(flag = true): this {
    this.training = flag && !this.frozen;
    this.children.forEach((c) => c.train(this.training));
    return this;
  }

  /** Takes the module out of training for good (a fine-tuning's frozen stages): its
   *  parameters get no gradient, so an optimiser leaves them, weight decay included, and it
   *  stays in evaluation mode through train(): its BatchNorms normalise with their running
   *  statistics and keep them. */
  freeze(): this {
    this.frozen = true;
    this.parameters().forEach((p) => p.requireGrad(false));
    return this.train(false);
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

/** Every way `got` (from `where`: a state, a file) differs from the `want`ed names and shapes. */
export function stateDifferences(
  want: Map<string, readonly number[]>,
  got: Map<string, readonly number[]>,
  where: string,
  strict = true,
): string[] {
  const problems: string[] = [];
  for (const [k, shape] of want) {
    const g = got.get(k);
    if (g === undefined) problems.push(`missing ${k} [${shape.join(', ')}]`);
    else if (g.join() !== shape.join()) problems.push(`${k}: shape [${g.join(', ')}] in the ${where}, [${shape.join(', ')}] in the model`);
  }
  if (strict) for (const k of got.keys()) if (!want.has(k)) problems.push(`unexpected ${k}`);
  return problems;
}
