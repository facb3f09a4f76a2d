// Mixed precision, torch.autocast's idea narrowed to what IResNets need: inside
// `autocast('f16' | 'bf16', fn)` convolutions and linear layers cast their f32 operands to
// the low dtype, multiply there (tensor cores on a GPU; on the CPU in f32 from the exact
// low-precision values) and hand back f32, so batch norm, PReLU, the classifier and the
// loss stay f32. Parameters stay f32 (the master weights): the cast's backward returns
// their gradients in f32. Activation checkpoints replay with the precision they ran with.

export type LowPrecision = 'f16' | 'bf16';

let current: LowPrecision | null = null;

export function autocast<R>(dtype: LowPrecision | null, fn: () => R): R {
  const before = current;
  current = dtype;
  try {
    return fn();
  } finally {
    current = before;
  }
}

/** The low dtype products compute in now, or null (f32). */
export function autocastDtype(): LowPrecision | null {
  return current;
}
