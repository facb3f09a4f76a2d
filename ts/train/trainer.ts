// The trainer: one loop for one process or many. Data-parallel backbone (rank 0's weights
// broadcast, gradients averaged), the sharded margin-softmax classifier, optional angular
// distillation with the convex objective, warmup + polynomial LR per step, clipping, gradient
// accumulation, mixed precision (f16 with dynamic loss scaling, or bf16) on 'cpu' or a GPU;
// a progress line and metrics.jsonl on rank 0, periodic verification,
// checkpoints that resume exactly, Ctrl-C that checkpoints and stops, and a non-finite loss
// or gradient that is never applied and stops the run. A GPU step is queued without waiting
// for the host: its numbers are read back at log points (see StepLog).

import fs from 'node:fs';
import path from 'node:path';
import { createModel, IResNet } from '../models/iresnet';
import { saveCheckpoint } from '../models/weights';
import { ShardedMarginSoftmax } from '../losses/sharded';
import { angleDistillation, convexObjective, kdLambda } from '../losses/distill';
import { SGD } from '../optim/sgd';
import { polyLr } from '../optim/schedule';
import { gradientGate, gradSquaredNorm } from '../optim/clip';
import { LossScaler } from '../optim/loss-scaler';
import { autocast } from '../tensor/autocast';
import { manualSeed } from '../tensor/random';
import { keep, tidy } from '../tensor/scope';
import * as ops from '../tensor/ops';
import { Communicator } from '../parallel/comm';
import { worldFromEnv } from '../parallel/world';
import { broadcastBuffers, broadcastModule } from '../parallel/data-parallel';
import { GradientBuckets } from '../parallel/buckets';
import { openTrainingData } from '../data/training-data';
import { readVerificationBin } from '../data/verification-bin';
import { verify, VerificationResult } from '../eval/verification';
import { ResolvedConfig } from './config';
import { checkpointCounters, loadTrainingState, saveTrainingState, TrainingParts } from './training-state';
import { openTeacher } from './teacher';
import { MetricsLog, Progress } from './progress';
import { StepLog } from './step-log';

export interface TrainOptions {
  /** Continue from `output/checkpoint`. */
  resume?: boolean;
  /** The communicator (default: joined from the launcher's environment). */
  comm?: Communicator;
  /** No progress line (metrics.jsonl is still written). */
  quiet?: boolean;
  /** Called on rank 0 with each verification round. */
  onVerify?: (step: number, results: VerificationResult[]) => void;
  /** Called on every rank after each optimiser step with its metrics. */
  onStep?: (step: number, m: { loss: number; cosface: number; kd: number; lr: number }) => void;
}

export interface TrainResult {
  status: 'done' | 'interrupted';
  step: number;
  /** The mean loss of the last logged steps. */
  loss: number;
  verification: VerificationResult[];
  imagesPerSecond: number;
  /** The final backbone weights (written by rank 0 when the run completes). */
  weights: string | null;
  model: IResNet;
}

/** A loss or gradient that is NaN or infinite: the run stops before applying it. */
export class NonFiniteLoss extends Error {}

export async function train(cfg: ResolvedConfig, o: TrainOptions = {}): Promise<TrainResult> {
  const comm = o.comm ?? Communicator.connect(worldFromEnv(), { timeoutMs: cfg.commTimeoutSeconds * 1000 });
  const lead = comm.rank === 0;
  manualSeed(cfg.seed);
  const data = openTrainingData(cfg.data);
  const classes = cfg.numClasses ?? data.classes;
  if (classes < data.classes) throw new Error(`config: numClasses ${classes} is fewer than the ${data.classes} identities of ${cfg.data}`);
  const loader = data.loader({
    batch: cfg.batchSize,
    seed: cfg.seed,
    rank: comm.rank,
    world: comm.world,
    maskProbability: cfg.maskProbability,
    maskTemplateShare: cfg.maskTemplateShare,
    skipCorrupt: cfg.skipCorrupt,
    threads: cfg.loaderThreads,
  });
  const accum = cfg.gradAccumulation;
  const perEpoch = loader.batchesPerEpoch();
  if (perEpoch < 1) throw new Error(`config: ${data.length} images over ${comm.world} ranks make no full batch of ${cfg.batchSize}`);
  const total = cfg.steps ?? Math.max(1, Math.round(((cfg.epochs ?? 1) * perEpoch) / accum));
  const schedule = { base: cfg.lr, warmupSteps: cfg.warmupSteps ?? Math.round(((cfg.warmupEpochs ?? 0) * perEpoch) / accum), totalSteps: total };
  polyLr(schedule, 0); // refuses a warmup as long as the run before any work

  // 'cuda': this rank's own GPU, as torchrun's LOCAL_RANK numbers them.
  const device = cfg.device === 'cuda' ? `cuda:${worldFromEnv().localRank}` : cfg.device;
  if (device !== 'cpu' && comm.world > 1) comm.attachGpu(device);
  const model = createModel(cfg.network, cfg.embeddingSize === undefined ? {} : { embedding: cfg.embeddingSize }).to(device);
  const precision = cfg.precision === 'f32' ? null : cfg.precision;
  // f16 gradients underflow without it; bf16 has f32's range.
  const scaler = cfg.precision === 'f16' ? new LossScaler({ initScale: cfg.lossScale }, device) : null;
  const ck = cfg.checkpointing ?? false;
  model.checkpointing = typeof ck === 'boolean' ? [ck, ck, ck, ck] : [...ck];
  const head = new ShardedMarginSoftmax(comm, model.config.embedding, classes, { margin: cfg.margin, sampleRate: cfg.sampleRate, chunk: cfg.chunk, seed: cfg.seed });
  // The whole step on the GPU: each rank's shard of the classifier follows its backbone.
  head.to(device);
  broadcastModule(comm, model);
  // On several ranks the backbone's gradients are averaged in buckets during the backward.
  const buckets = comm.world > 1 ? new GradientBuckets(comm, model.parameters(), { bucketBytes: cfg.bucketMiB * 2 ** 20, compress: cfg.bucketCompression }) : null;
  const sgd = { lr: cfg.lr, momentum: cfg.momentum, weightDecay: cfg.weightDecay };
  const optB = new SGD(model.parameters(), sgd);
  const optH = new SGD(head.parameters(), sgd);
  // The backbone is the same on every rank: rank 0 saves it; each rank saves its shard.
  const headName = comm.world > 1 ? `head.rank${comm.rank}` : 'head';
  const parts: TrainingParts = lead
    ? { modules: { backbone: model, [headName]: head }, optimizers: { backbone: optB, head: optH } }
    : { modules: { [headName]: head }, optimizers: { head: optH } };
  const ckpt = path.join(cfg.output, 'checkpoint');
  let [step, batches] = [0, 0];
  if (o.resume === true) {
    if (checkpointCounters(ckpt) === null) throw new Error(`--resume: no checkpoint in ${ckpt}`);
    const c = loadTrainingState(ckpt, parts, comm);
    [step, batches] = [c.step, Number(c.batches)];
    if (scaler !== null && c.lossScale !== undefined) {
      scaler.restore(Number(c.lossScale), Number(c.scalerGoodSteps), Number(c.overflowSteps));
    }
    broadcastModule(comm, model);
    comm.broadcast(optB.buffers, 0);
  }
  fs.mkdirSync(cfg.output, { recursive: true });
  if (lead) fs.writeFileSync(path.join(cfg.output, 'config.json'), JSON.stringify(cfg, null, 2));
  const metrics = lead ? new MetricsLog(path.join(cfg.output, 'metrics.jsonl')) : null;
  const progress = lead && o.quiet !== true ? new Progress(total, step, cfg.batchSize * comm.world * accum) : null;
  const sets = cfg.verification.map((f) => ({ name: path.basename(f, '.bin'), set: readVerificationBin(f) }));
  const teacher = cfg.teacher === undefined ? null : openTeacher(cfg.teacher, data, device);

  let lastGood = checkpointCounters(ckpt)?.step ?? null;
  const offClock = <T>(f: () => T): T => (progress === null ? f() : progress.aside(f));
  const save = () =>
    offClock(() => {
      const scaling: Record<string, number> = scaler === null ? {} : { lossScale: scaler.scale, scalerGoodSteps: scaler.goodSteps, overflowSteps: scaler.overflowSteps };
      saveTrainingState(ckpt, parts, { step, epoch: Math.floor(batches / perEpoch), batches, ...scaling }, comm);
      lastGood = step;
    });
  let verification: VerificationResult[] = [];
  const verifyAll = () => {
    broadcastBuffers(comm, model);
    verification = offClock(() => sets.map((s) => verify(model, s.set, { name: s.name, comm })));
    if (lead) {
      progress?.say(`step ${step}: ${verification.map((v) => `${v.name} ${(100 * v.accuracy).toFixed(2)}% ± ${(100 * v.std).toFixed(2)}`).join(', ')}`);
      metrics?.write({ step, verification });
      o.onVerify?.(step, verification);
    }
  };
  let signals = 0;
  const onSignal = () => {
    if (++signals > 1) process.exit(130); // a second Ctrl-C does not wait for the checkpoint
    progress?.say('interrupted: finishing this step, then saving a checkpoint (Ctrl-C again to quit now)');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let status: TrainResult['status'] = 'done';
  let logged = { loss: NaN, imagesPerSecond: NaN };
  let window = { loss: 0, n: 0 };
  const log = new StepLog(comm);
  // Reads the steps' numbers back (the only place a GPU step waits for the host, f16
  // included): at log, checkpoint and verification points and at the end, or every step
  // for an onStep callback. A non-finite loss or gradient stops the run here;
  // its step was not applied (the gate skipped it).
  const flush = () => {
    comm.drain(); // GPU ranks: bounded, so a dead rank is an error here, not a hung read
    for (const v of log.read()) {
      if (!Number.isFinite(v.loss) || (scaler === null && !v.applied)) {
        const where = lastGood === null ? 'no checkpoint was written yet' : `the last good checkpoint is ${ckpt} (step ${lastGood})`;
        throw new NonFiniteLoss(`step ${v.step}: the loss is ${v.loss} and the gradient norm ${v.gradNorm}; the step was not applied; ${where}`);
      }
      o.onStep?.(v.step, { loss: v.loss, cosface: v.cosface, kd: v.kd, lr: v.lr });
      window = { loss: window.loss + v.loss, n: window.n + 1 };
      if (v.step % cfg.logEvery === 0 || v.step === total) {
        const rate = progress?.rate(v.step) ?? { imagesPerSecond: NaN };
        logged = { loss: window.loss / window.n, imagesPerSecond: rate.imagesPerSecond };
        window = { loss: 0, n: 0 };
        const fields: { loss: number; lr: number; [k: string]: number } =
          teacher === null ? { loss: logged.loss, lr: v.lr } : { loss: logged.loss, lr: v.lr, cosface: v.cosface, kd: v.kd, lambda: v.lambda };
        if (scaler !== null) Object.assign(fields, { lossScale: scaler.scale, overflowSteps: scaler.overflowSteps });
        progress?.update(v.step, fields);
        metrics?.write({ step: v.step, epoch: Math.floor((batches - 1) / perEpoch), ...fields, gradNorm: v.gradNorm, imagesPerSecond: rate.imagesPerSecond });
      }
    }
  };
  const maxNorm = cfg.clipGradNorm > 0 ? cfg.clipGradNorm : Infinity;
  try {
    run: while (step < total) {
      for await (const b of loader.epoch(Math.floor(batches / perEpoch), batches % perEpoch)) {
        const lambda = teacher === null ? 0 : kdLambda(cfg.kd.lambda, step);
        tidy(() => {
          const emb = autocast(precision, () => model.forward(ops.to(b.images, device)));
          const cos = head.loss(emb, b.labels, batches);
          const kd = teacher === null ? null : angleDistillation(emb, ops.to(teacher.embed(b), emb.device), cfg.kd.form);
          const loss = kd === null ? cos : convexObjective(cos, kd, lambda);
          if (batches + 1 === (step + 1) * accum) buckets?.begin(); // the step's last micro-batch
          const part = accum > 1 ? ops.scale(loss, 1 / accum) : loss;
          (scaler === null ? part : scaler.scaleLoss(part)).backward();
          log.addMicroBatch(cos, kd);
        });
        b.images.dispose();
        batches++;
        if (batches < (step + 1) * accum) continue;

        buckets?.finish();
        // One gate per step, on the device: unscale (f16), clip the backbone's norm, and
        // skip the whole step when any gradient is not finite. The backbone's gradients are
        // the same on every rank; the shards' norms are summed over the ranks, so every rank
        // skips alike.
        const [gateB, gateH, sumsq] = tidy(() => {
          const bsq = gradSquaredNorm(model.parameters(), device);
          const hsq = gradSquaredNorm(head.parameters(), device);
          comm.allReduce([hsq], 'sum');
          const checked = ops.add(bsq, ops.scale(hsq, 0)); // bsq, or NaN when hsq is not finite
          const gate = (clip: number) => keep(scaler === null ? gradientGate(checked, { maxNorm: clip }) : scaler.gate(checked, clip));
          return [gate(maxNorm), gate(Infinity), keep(checked)];
        });
        const [stops] = comm.allReduceValues([signals > 0 ? 1 : 0], 'sum');
        const lr = polyLr(schedule, step);
        [optB, optH].forEach((opt) => (opt.lr = lr));
        // A gate that is not finite leaves the step unapplied on the device; f16's scale
        // then backs off (or grows after clean steps) there too: nothing is read back.
        optB.step(gateB);
        optH.step(gateH);
        const scale = scaler?.scaleNow() ?? null; // before update: the scale this step's gradients carry
        scaler?.update(gateB);
        gateH.dispose();
        [optB, optH].forEach((opt) => opt.zeroGrad());
        step++;
        log.endStep({ step, lr, lambda, gate: gateB, sumsq, scale });
        const verifyNow = cfg.verifyEvery > 0 && step % cfg.verifyEvery === 0 && step < total;
        const saveNow = cfg.checkpointEvery > 0 && step % cfg.checkpointEvery === 0 && step < total;
        if (o.onStep !== undefined || step % cfg.logEvery === 0 || step >= total || verifyNow || saveNow || stops > 0) flush();
        if (verifyNow) verifyAll();
        if (stops > 0) {
          save();
          status = 'interrupted';
          progress?.say(`saved a checkpoint at step ${step} in ${ckpt}; continue with --resume`);
          break run;
        }
        if (saveNow) save();
        if (step >= total) break run;
      }
    }
  } finally {
    log.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    teacher?.dispose();
    progress?.done();
  }
  let weights: string | null = null;
  if (status === 'done') {
    if (sets.length > 0) verifyAll();
    save();
    if (lead) {
      weights = path.join(cfg.output, 'model.safetensors');
      saveCheckpoint(model, weights, { network: cfg.network, step: String(step) });
    }
  }
  optB.dispose();
  optH.dispose();
  head.dispose();
  scaler?.dispose();
  return { status, step, loss: logged.loss, verification, imagesPerSecond: logged.imagesPerSecond, weights, model };
}
