#!/usr/bin/env node
// `maskfr`: the command-line entry, a name → command table. Each command declares its options
// once (./args.ts); its parser and `maskfr <command> --help` both read that declaration.

import { systemInfo } from '../system';
import { exportOnnx, fold, fruits, listModels } from './models';
import { augment, inspect, pack, syntheticFaces } from './data';
import { align } from './align';
import { mask } from './mask';
import { embedCommand, launchCommand, trainCommand } from './train';
import { evalCommand } from './eval';
import { ijbCommand } from './ijb';
import { fitFruits } from './fit-fruits';
import { doctor } from './doctor';
import { planCommand } from './plan';
import { convert } from './convert';
import { Command, helpText, parseArgs } from './args';

const info: Command = {
  summary: 'print the CPU, its cores, the compute threads, the Node version and the platform as JSON',
  usage: 'maskfr info',
  options: [],
  example: 'maskfr info',
  run() {
    console.log(JSON.stringify(systemInfo(), null, 2));
    return 0;
  },
};

export const COMMANDS: Record<string, Command> = {
  info,
  doctor,
  'synthetic-faces': syntheticFaces,
  pack,
  align,
  mask,
  inspect,
  augment,
  models: listModels,
  fold,
  export: exportOnnx,
  train: trainCommand,
  launch: launchCommand,
  plan: planCommand,
  embed: embedCommand,
  eval: evalCommand,
  ijb: ijbCommand,
  fruits,
  'fit-fruits': fitFruits,
  convert,
};

function usage(): string {
  const rows = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(16)} ${c.summary}`);
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
  // What follows `--` belongs to another command (launch's ranks, their own --help included).
  const sep = rest.indexOf('--');
  const own = sep >= 0 ? rest.slice(0, sep) : rest;
  if (own.includes('--help') || own.includes('-h')) {
    console.log(helpText(name, cmd));
    return 0;
  }
  const p = parseArgs(name, rest, cmd.options, cmd.usage);
  if (p.after !== null && cmd.after === undefined) throw new Error(`${name}: nothing may follow --`);
  return cmd.run(p);
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
