// The user-facing tensor: a native handle plus autograd state. Data lives in Rust memory.

import { native, NativeTensor } from '../native';
import { track } from './scope';
import type { Node } from '../autograd/node';
import { backward } from '../autograd/tape';

export type DType = 'f32' | 'f16' | 'bf16';
export type Shape = readonly number[];

export class Tensor {
  readonly shape: Shape;
  readonly dtype: DType;
  /** 'cpu' or 'cuda:N'; changes only through `moveTo_`. */
  device: string;
  requiresGrad = false;
  /** Accumulated gradient of a leaf after `backward()`. */
  grad: Tensor | null = null;
  /** The operation that made this tensor, while the tape holds it. */
  node: Node | null = null;
  /** Made by a recorded op (not a leaf), even after backward released its node. */
  recorded = false;
  private h: NativeTensor | null;

  constructor(handle: NativeTensor) {
    this.h = handle;
    this.shape = Object.freeze(handle.shape);
    this.dtype = handle.dtype as DType;
    this.device = handle.device;
    track(this);
  }

  get numel(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  get disposed(): boolean {
    return this.h === null;
  }

  /** The native handle; `op` names the caller in the error for a disposed tensor. */
  handle(op: string): NativeTensor {
    if (this.h === null) throw new Error(`${op}: a tensor of shape [${this.shape.join(', ')}] was used after dispose()`);
    return this.h;
  }

  toFloat32Array(): Float32Array {
    return this.handle('toFloat32Array').toFloat32();
  }

  /** The value of a one-element tensor. */
  item(): number {
    if (this.numel !== 1) throw new Error(`item: expected one element, got shape [${this.shape.join(', ')}]`);
    return this.toFloat32Array()[0];
  }

  /** Moves this leaf's storage to `device` in place (what `Module.to` does to parameters
   *  and buffers); its gradient, if any, is dropped. Not recorded on the tape: use
   *  `ops.to` inside a computation. */
  moveTo_(device: string): this {
    if (this.node !== null) throw new Error(`moveTo_: ${this} was made by an op; use ops.to(x, '${device}')`);
    const moved = this.handle('moveTo_').to(device);
    if (moved !== this.h) this.h?.dispose();
    this.h = moved;
    this.device = moved.device;
    this.grad?.dispose();
    this.grad = null;
    return this;
  }

  /** Frees the native storage now (views keep it alive) and drops the autograd links. */
  dispose(): void {
    this.h?.dispose();
    this.h = null;
    this.node?.owned.forEach((t) => t.dispose());
    this.node = null;
    this.grad?.dispose();
    this.grad = null;
  }

  /** Accumulates d(this)/d(leaf) into every leaf's `.grad` (see autograd/tape.ts). */
  backward(grad?: Tensor): void {
    backward(this, grad);
  }

  /** Marks this tensor as a leaf whose gradient `backward()` accumulates in `.grad`. */
  requireGrad(flag = true): this {
    this.requiresGrad = flag;
    return this;
  }

  toString(): string {
    return `Tensor([${this.shape.join(', ')}], ${this.dtype}, ${this.device}${this.requiresGrad ? ', requiresGrad' : ''})`;
  }
}

function checkShape(shape: Shape, what: string): number[] {
  if (!shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new Error(`${what}: shape must be non-negative integers, got [${shape.join(', ')}]`);
  }
  return [...shape];
}

export function tensor(data: ArrayLike<number>, shape: Shape): Tensor {
  const arr = data instanceof Float32Array ? data : Float32Array.from(data);
  return new Tensor(native.NativeTensor.fromFloat32(arr, checkShape(shape, 'tensor')));
}

export function full(shape: Shape, value: number, device = 'cpu'): Tensor {
  return new Tensor(native.NativeTensor.full(checkShape(shape, 'full'), value, device));
}

export function zeros(shape: Shape, device = 'cpu'): Tensor {
  return full(shape, 0, device);
}

export function ones(shape: Shape, device = 'cpu'): Tensor {
  return full(shape, 1, device);
}
