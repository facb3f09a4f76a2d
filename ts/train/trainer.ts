// The trainer: one loop for one process or many, read top to bottom as arcface_torch's
// train.py: config → loader → backbone → margin classifier → optimisers → loop. Data-parallel
// backbone (rank 0's weights broadcast, gradients averaged), the sharded margin-softmax
// classifier, optional angular distillation with the convex objective, warmup + polynomial LR
// per step, gradient accumulation, mixed precision (f16 with dynamic loss scaling, or bf16) on
// 'cpu' or a GPU. The steps it calls: the optimiser's gates (clipping, loss scale, skipping a
// non-finite step) in optim/clip.ts; when to log, verify and checkpoint in cadence.ts; the
// read-back, progress line, metrics.jsonl and verification in run-log.ts; checkpoints that
// resume exactly in training-state.ts; Ctrl-C in interrupts.ts; a pretrained start (`init`)
// in init.ts. A GPU step is queued without waiting for the host: its numbers are read back
// only at those points (see StepLog).

import path from 'node:path';
import { createModel, IResNet } from '../models/iresnet';
import { saveCheckpoint } from '../models/weights';
import { ShardedMarginSoftmax } from '../losses/sharded';
import { angleDistillation, convexObjective, kdLambda } from '../losses/distill';
import { SGD } from '../optim/sgd';
import { polyLr } from '../optim/schedule';
import { stepGates } from '../optim/clip';
import { LossScaler } from '../optim/loss-scaler';
import { autocast } from '../tensor/autocast';
import { manualSeed } from '../tensor/random';
import { tidy } from '../tensor/scope';
import { writeFileAtomic } from '../io/atomic';
import * as ops from '../tensor/ops';
import { Communicator } from '../parallel/comm';
import { worldFromEnv } from '../parallel/world';
import { broadcastModule } from '../parallel/data-parallel';
import { GradientBuckets } from '../parallel/buckets';
import { openTrainingData } from '../data/training-data';
import { readVerificationBin } from '../data/verification-bin';
import { VerificationResult } from '../eval/verification';
import { ResolvedConfig } from './config';
import { RunCheckpoints } from './training-state';
import { openTeacher } from './teacher';
import { describeInit, freezeStages, loadInit } from './init';
import { Cadence } from './cadence';
import { Interrupts } from './interrupts';
import { RunLog } from './run-log';

export { NonFiniteLoss } from './run-log';

export interface TrainOptions {
  /** Continue from `output/checkpoint`. */
  resume?: boolean;
  /** Start over in an `output` that holds a run, removing its files (else refused). */
  overwrite?: boolean;
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

export async function train(cfg: ResolvedConfig, o: TrainOptions = {}): Promise<TrainResult> {
  // From the first line: a signal during start-up is a stop too. Rank 0 speaks on its own
  // until the progress line exists.
  const lead = o.quiet !== true && (o.comm?.rank ?? worldFromEnv().rank) === 0;
  const interrupts = new Interrupts((line) => void (lead && console.log(line)));
  try {
    return await runTraining(cfg, o, interrupts);
  } finally {
    interrupts.close();
  }
}

async function runTraining(cfg: ResolvedConfig, o: TrainOptions, interrupts: Interrupts): Promise<TrainResult> {
  const comm = o.comm ?? Communicator.connect(worldFromEnv(), { timeoutMs: cfg.commTimeoutSeconds * 1000 });
  // Start-up in steps every rank takes together: one that fails on one rank (a corrupt file,
  // a refused checkpoint) stops every rank at once, naming it, instead of leaving the others
  // in their next collective until the timeout.
  const local = comm.everyRank('start-up', () => {
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
      photometric: cfg.photometric,
      skipCorrupt: cfg.skipCorrupt,
      maxCorruptShare: cfg.maxCorruptShare,
      threads: cfg.loaderThreads,
    });
    const perEpoch = loader.batchesPerEpoch();
    if (perEpoch < 1) throw new Error(`config: ${data.length} images over ${comm.world} ranks make no full batch of ${cfg.batchSize}`);
    const total = cfg.steps ?? Math.max(1, Math.round(((cfg.epochs ?? 1) * perEpoch) / cfg.gradAccumulation));
    const schedule = { base: cfg.lr, warmupSteps: cfg.warmupSteps ?? Math.round(((cfg.warmupEpochs ?? 0) * perEpoch) / cfg.gradAccumulation), totalSteps: total };
    polyLr(schedule, 0); // refuses a warmup as long as the run before any work
    // 'cuda': this rank's own GPU, as torchrun's LOCAL_RANK numbers them.
    const device = cfg.device === 'cuda' ? `cuda:${worldFromEnv().localRank}` : cfg.device;
    const model = createModel(cfg.network, cfg.embeddingSize === undefined ? {} : { embedding: cfg.embeddingSize }).to(device);
    // Pretrained weights on rank 0 (broadcast below), on a new run only: a resumed one's
    // checkpoint has its weights. Frozen stages on every run of the recipe.
    const init = cfg.init !== undefined && o.resume !== true && comm.rank === 0 ? loadInit(model, cfg.init) : null;
    if (cfg.init?.freeze !== undefined) freezeStages(model, cfg.init.freeze);
    const sets = cfg.verification.map((f) => ({ name: path.basename(f, '.bin'), set: readVerificationBin(f) }));
    const teacher = cfg.teacher === undefined ? null : openTeacher(cfg.teacher, data, device);
    return { data, classes, loader, perEpoch, total, schedule, device, model, init, sets, teacher };
  });
  const { classes, loader, perEpoch, total, schedule, device, model, init, sets, teacher } = local;
  const accum = cfg.gradAccumulation;
  if (device !== 'cpu' && comm.world > 1) comm.attachGpu(device);
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
  const [optB, optH] = [new SGD(model.parameters(), sgd), new SGD(head.parameters(), sgd)];
  const maxNorm = cfg.clipGradNorm > 0 ? cfg.clipGradNorm : Infinity;

  const parts = { backbone: model, head, backboneOptimizer: optB, headOptimizer: optH };
  const checkpoints = new RunCheckpoints(cfg.output, comm, parts, scaler, { resume: o.resume, overwrite: o.overwrite });
  let [step, batches] = [0, 0];
  if (o.resume === true) {
    const resumed = comm.everyRank('--resume', () => checkpoints.resume());
    ({ step, batches } = resumed);
    loader.carrySkipped(Math.floor(batches / perEpoch), resumed.skipped); // the resumed epoch's, before the resume
    broadcastModule(comm, model); // rank 0 read the backbone and its momentum
    comm.broadcast(optB.buffers, 0);
  }
  const cadence = new Cadence(cfg, total, o.onStep !== undefined);
  const log = comm.everyRank('start-up', () => new RunLog(cfg, comm, cadence, { from: step, perEpoch, scaler, quiet: o.quiet, onStep: o.onStep, onVerify: o.onVerify, skipped: cfg.skipCorrupt ? () => loader.skipped : undefined }));
  interrupts.say = (line) => log.say(line);
  if (init !== null) {
    describeInit(init).forEach((line) => log.say(line));
    writeFileAtomic(path.join(cfg.output, 'init.json'), [JSON.stringify(init, null, 2)]);
  }
  const save = () => {
    const epoch = Math.floor(batches / perEpoch);
    const skipped = loader.skipped.epoch === epoch ? loader.skipped.count : 0; // 0: an epoch not begun
    log.offClock(() => checkpoints.save(step, epoch, batches, skipped));
  };
  let verification: VerificationResult[] = [];
  let status: TrainResult['status'] = 'done';
  try {
    // A stop during start-up: nothing trained, nothing to save (a resumed checkpoint is left as it was).
    if (await interrupts.anyRank(comm)) {
      status = 'interrupted';
      log.say(step === 0 ? 'stopped before the first step; nothing was trained' : `stopped before step ${step + 1}; the checkpoint of step ${step} in ${checkpoints.dir} is as it was: continue with --resume`);
    }
    interrupts.stage = 'training';
    run: while (status === 'done' && step < total) {
      for await (const b of loader.epoch(Math.floor(batches / perEpoch), batches % perEpoch)) {
        const lambda = teacher === null ? 0 : kdLambda(cfg.kd.lambda, step);
        tidy(() => {
          const emb = autocast(precision, () => model.forward(ops.to(b.images, device), b.masked));
          const cos = head.loss(emb, b.labels, batches);
          const kd = teacher === null ? null : angleDistillation(emb, ops.to(teacher.embed(b), emb.device), cfg.kd.form);
          const loss = kd === null ? cos : convexObjective(cos, kd, lambda);
          if (batches + 1 === (step + 1) * accum) buckets?.begin(); // the step's last micro-batch
          const part = accum > 1 ? ops.scale(loss, 1 / accum) : loss;
          (scaler === null ? part : scaler.scaleLoss(part)).backward();
          log.steps.addMicroBatch(cos, kd);
        });
        b.images.dispose();
        batches++;
        if (batches < (step + 1) * accum) continue;

        buckets?.finish();
        const gates = stepGates(model.parameters(), head.parameters(), comm, scaler, maxNorm, device);
        const stop = await interrupts.anyRank(comm);
        const lr = polyLr(schedule, step);
        optB.lr = lr * (cfg.init?.backboneLrScale ?? 1);
        optH.lr = lr;
        // A gate that is not finite leaves the step unapplied on the device; f16's scale
        // then backs off (or grows after clean steps) there too: nothing is read back.
        optB.step(gates.backbone);
        optH.step(gates.head);
        const scale = scaler?.scaleNow() ?? null; // before update: the scale this step's gradients carry
        scaler?.update(gates.backbone);
        gates.head.dispose();
        [optB, optH].forEach((opt) => opt.zeroGrad());
        step++;
        log.steps.endStep({ step, lr, lambda, gate: gates.backbone, sumsq: gates.sumsq, scale });
        const due = cadence.at(step, stop);
        if (due.readBack) log.flush(batches, checkpoints.resumeFrom());
        if (due.verify) verification = log.verify(step, model, sets, checkpoints.resumeFrom());
        // A stop in the last step lets the run finish as below.
        if (stop && step < total) {
          save();
          status = 'interrupted';
          log.say(`saved a checkpoint at step ${step} in ${checkpoints.dir}; continue with --resume`);
          break run;
        }
        if (due.save) save();
        if (step >= total) break run;
      }
    }
  } finally {
    teacher?.dispose();
    log.close();
  }
  let weights: string | null = null;
  if (status === 'done') {
    // A signal from here on is taken once the final checkpoint and weights are written: the
    // run completed, so it ends as done (exit 0) with nothing left to resume.
    interrupts.stage = 'finishing';
    if (sets.length > 0) verification = log.verify(step, model, sets, checkpoints.resumeFrom());
    save();
    if (comm.rank === 0) {
      weights = path.join(cfg.output, 'model.safetensors');
      saveCheckpoint(model, weights, { network: cfg.network, step: String(step) });
    }
  }
  [optB, optH, head].forEach((x) => x.dispose());
  scaler?.dispose();
  return { status, step, loss: log.last.loss, verification, imagesPerSecond: log.last.imagesPerSecond, weights, model };
}
