// A command's options, declared once as records that both the parser and `--help` read (so
// the help cannot drift from what is accepted): `--name value` options, `--flag` switches,
// positional arguments, and what follows `--`, with clear errors.

export interface Option {
  name: string;
  help: string;
  /** The value's placeholder in the help (`N`, `FILE`); absent: a switch. */
  value?: string;
  /** What an absent option reads as (the parser fills it in). */
  default?: string;
  /** The default in words where it is not a value (`the config's`, `off`). */
  defaultHelp?: string;
  required?: boolean;
  /** Given any number of times; its values are collected in order. */
  repeated?: boolean;
}

export interface Command {
  /** One line for `maskfr --help`. */
  summary: string;
  /** Positional arguments and required options as typed, `[options]` where others exist. */
  usage: string;
  options: readonly Option[];
  /** What may follow `--` (absent: nothing may). */
  after?: string;
  example: string;
  /** Runs on the command line parsed against `options`. */
  run(p: Parsed): Promise<number> | number;
}

export interface Parsed {
  command: string;
  positional: string[];
  /** Each given value, or its default. */
  options: Map<string, string>;
  flags: Set<string>;
  /** The values of repeated options. */
  lists: Map<string, string[]>;
  /** What follows `--` (null without one): another command's arguments. */
  after: string[] | null;
}

/** Parses `argv` against the command's declared options (`usage` goes into the error for a
 *  missing required one). */
export function parseArgs(command: string, argv: string[], options: readonly Option[], usage = ''): Parsed {
  const out: Parsed = { command, positional: [], options: new Map(), flags: new Set(), lists: new Map(), after: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      out.after = argv.slice(i + 1);
      break;
    }
    if (!a.startsWith('--')) {
      out.positional.push(a);
      continue;
    }
    const o = options.find((c) => c.name === a.slice(2));
    if (o === undefined) {
      const known = options.map((c) => `--${c.name}`).join(', ');
      throw new Error(`${command}: unknown option ${a} (known: ${known || 'none'})`);
    }
    if (o.value === undefined) {
      out.flags.add(o.name);
      continue;
    }
    const v = argv[++i];
    if (v === undefined) throw new Error(`${command}: ${a} needs a value`);
    if (o.repeated) out.lists.set(o.name, [...(out.lists.get(o.name) ?? []), v]);
    else out.options.set(o.name, v);
  }
  for (const o of options) {
    if (o.default !== undefined && !out.options.has(o.name)) out.options.set(o.name, o.default);
    if (o.required && !out.options.has(o.name) && !out.lists.has(o.name)) throw new Error(`${command}: --${o.name} is required${usage && ` (usage: ${usage})`}`);
  }
  return out;
}

/** Option `name` as an integer ≥ `min`, refused at the argument, not deep in an op
 *  (`--batch 0` failed inside reshape). */
export function integerOption(p: Parsed, name: string, min: number): number {
  const v = Number(required(p, name));
  if (!Number.isInteger(v) || v < min) throw new Error(`${p.command}: --${name} must be an integer ≥ ${min}, got ${p.options.get(name)}`);
  return v;
}

/** The value of an option the parser guarantees (required or defaulted). */
export function required(p: Parsed, name: string): string {
  const v = p.options.get(name);
  if (v === undefined) throw new Error(`${p.command}: --${name} is required`);
  return v;
}

/** `maskfr NAME --help`: the summary, the usage, every option with its default, an example. */
export function helpText(name: string, c: Command): string {
  const left = c.options.map((o) => `--${o.name}${o.value === undefined ? '' : ` ${o.value}`}`);
  const width = Math.max(0, ...left.map((l) => l.length));
  const rows = c.options.map((o, i) => {
    const d = o.required ? 'required' : o.default !== undefined ? `default: ${o.default}` : `default: ${o.defaultHelp ?? (o.value === undefined ? 'off' : 'none')}`;
    return `  ${left[i].padEnd(width)}  ${o.help} (${d}${o.repeated ? '; repeatable' : ''})`;
  });
  const after = c.after === undefined ? [] : [`  ${'-- ...'.padEnd(width)}  ${c.after}`];
  return [`maskfr ${name}: ${c.summary}`, '', `Usage: ${c.usage}`, '', 'Options:', ...(rows.length > 0 ? rows : ['  none']), ...after, '', 'Example:', `  ${c.example}`].join('\n');
}
