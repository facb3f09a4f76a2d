#!/usr/bin/env node
// `maskfr`: the command-line entry. Commands are a name → handler table; later work adds
// train, eval, pack, launch, export…

import { systemInfo } from '../system';
import { exportOnnx, fold, fruits, listModels } from './models';
import { augment, inspect, pack, synth } from './data';
import { embedCommand, launchCommand, trainCommand } from './train';
import { evalCommand } from './eval';
import { doctor } from './doctor';
import { planCommand } from './plan';

interface Command {
  summary: string;
  run(args: string[]): Promise<number> | number;
}

const COMMANDS: Record<string, Command> = {
  info: {
    summary: 'print the machine, thread count and native build in use',
    run() {
      console.log(JSON.stringify(systemInfo(), null, 2));
      return 0;
    },
  },
  doctor: { summary: 'what this machine offers: CPU, CUDA driver, GPUs and libraries (and what is missing)', run: doctor },
  synth: { summary: 'write the synthetic-faces dataset: train.rec/.idx and a verify.bin of held-out identities', run: synth },
  pack: { summary: 'pack an image folder (one sub-folder per identity): maskfr pack DIR OUT.rec', run: pack },
  inspect: { summary: 'counts and a contact sheet of a dataset: maskfr inspect X.rec [--sheet OUT.png]', run: inspect },
  augment: { summary: 'preview mask synthesis: maskfr augment --preview N OUT.png', run: augment },
  models: { summary: 'list the IResNet table: blocks per stage, stride placement, params, GMACs', run: listModels },
  fold: { summary: 'fold every BatchNorm: maskfr fold IN.safetensors OUT.safetensors --model NAME', run: fold },
  export: { summary: 'ONNX export: maskfr export --model NAME [--weights W.safetensors] --out M.onnx [--fold]', run: exportOnnx },
  train: { summary: 'train: maskfr train --config FILE [--device cpu|cuda:N|auto] [--precision f32|f16|bf16] [--resume] [--quiet] [--set key=value …]', run: trainCommand },
  launch: {
    summary: 'start the ranks: maskfr launch --nproc-per-node N [--nnodes --node-rank --master-addr --master-port] -- train …',
    run: launchCommand,
  },
  plan: {
    summary: 'per-GPU memory and wall time: maskfr plan --model resnet240 --classes 2059906 --gpus 8 --batch 128 [--sample-rate 0.2] [--fp16] [--checkpointing] [--card-gib 80] [--images-per-second X]',
    run: planCommand,
  },
  embed: { summary: "a teacher's embeddings of a dataset: maskfr embed --model NAME --weights W --data PATH --out FILE", run: embedCommand },
  eval: {
    summary: 'verification: maskfr eval --model NAME --weights W --data X.bin|X.rec|DIR [--report DIR] [--mask mixed|template|renderer|held-out]',
    run: evalCommand,
  },
  fruits: { summary: 'FRUITS latency: maskfr fruits M.onnx, or --model NAME [--weights W] to compare folded/unfolded', run: fruits },
};

function usage(): string {
  const rows = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`);
  return ['Usage: maskfr <command> [options]', '', 'Masked-face recognition training.', '', 'Commands:', ...rows, '', 'Run `maskfr <command> --help` for a command\'s options.'].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return 0;
  }
  const cmd = COMMANDS[name];
  if (cmd === undefined) {
    console.error(`maskfr: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  // For launch, what follows `--` belongs to the ranks (their own --help included).
  const sep = rest.indexOf('--');
  const own = name === 'launch' && sep >= 0 ? rest.slice(0, sep) : rest;
  if (own.includes('--help') || own.includes('-h')) {
    console.log(`maskfr ${name}: ${cmd.summary}`);
    return 0;
  }
  return cmd.run(rest);
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      console.error(`maskfr: ${e instanceof Error ? e.message : String(e)}`);
      process.exit(1);
    },
  );
}
