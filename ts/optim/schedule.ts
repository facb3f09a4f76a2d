// Learning-rate schedules stepped every iteration, as arcface_torch: linear warmup from 0,
// then polynomial decay to 0 at the last step.

export interface PolySchedule {
  base: number;
  warmupSteps: number;
  totalSteps: number;
  /** 1: linear decay (DESIGN.md's recipe). */
  power?: number;
}

/** The learning rate for (0-based) iteration `step`. */
export function polyLr({ base, warmupSteps, totalSteps, power = 1 }: PolySchedule, step: number): number {
  if (!(totalSteps > warmupSteps && warmupSteps >= 0)) {
    throw new Error(`schedule: need 0 ≤ warmupSteps < totalSteps, got warmup ${warmupSteps}, total ${totalSteps}`);
  }
  if (step < warmupSteps) return (base * (step + 1)) / warmupSteps;
  const left = Math.max(0, 1 - (step - warmupSteps) / (totalSteps - warmupSteps));
  return base * left ** power;
}
