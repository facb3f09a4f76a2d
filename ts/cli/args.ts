// `--name value` options, `--flag` switches and positional arguments, with clear errors.

export interface Parsed {
  positional: string[];
  options: Map<string, string>;
  flags: Set<string>;
}

/** Parses `argv` knowing which names take a value and which are switches. */
export function parseArgs(command: string, argv: string[], valued: string[], switches: string[] = []): Parsed {
  const out: Parsed = { positional: [], options: new Map(), flags: new Set() };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) {
      out.positional.push(a);
      continue;
    }
    const name = a.slice(2);
    if (switches.includes(name)) out.flags.add(name);
    else if (valued.includes(name)) {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${command}: --${name} needs a value`);
      out.options.set(name, v);
    } else {
      const known = [...valued, ...switches].map((n) => `--${n}`).join(', ');
      throw new Error(`${command}: unknown option ${a} (known: ${known || 'none'})`);
    }
  }
  return out;
}

export function required(command: string, p: Parsed, name: string): string {
  const v = p.options.get(name);
  if (v === undefined) throw new Error(`${command}: --${name} is required`);
  return v;
}
