// The command-line options: Node's util.parseArgs splits the arguments (`--name value`, `--name=value`,
// `--flag`); this module checks each against its spec, so that unknown options and bad values are
// one-line errors naming the option, in this CLI's words (parseArgs's strict mode has its own).
import { parseArgs } from 'node:util';

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
  }
}

export interface OptionSpec {
  name: string;
  type: 'string' | 'number' | 'boolean';
  help: string;
  /** The value's placeholder in --help, e.g. FILE. */
  value?: string;
  choices?: readonly string[];
  default?: string | number | boolean;
}

export type ParsedOptions = Record<string, string | number | boolean | undefined>;

export function parseOptions(command: string, argv: readonly string[], specs: readonly OptionSpec[]): ParsedOptions {
  const out: ParsedOptions = {};
  for (const s of specs) if (s.default !== undefined) out[s.name] = s.default;
  const { tokens } = parseArgs({
    args: [...argv],
    options: Object.fromEntries(specs.map((s) => [s.name, { type: s.type === 'boolean' ? ('boolean' as const) : ('string' as const) }])),
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  for (const token of tokens) {
    if (token.kind !== 'option' || !token.rawName.startsWith('--')) {
      throw new CliError(`cbloss ${command}: unexpected argument '${argv[token.index]}' (see cbloss ${command} --help)`);
    }
    const { name } = token;
    const spec = specs.find((s) => s.name === name);
    if (!spec) throw new CliError(`cbloss ${command}: unknown option '--${name}' (see cbloss ${command} --help)`);
    if (spec.type === 'boolean') {
      if (token.inlineValue) throw new CliError(`cbloss ${command}: option --${name} takes no value`);
      out[name] = true;
      continue;
    }
    // (parseArgs takes the next argument as the value, even one that starts with --)
    const raw = token.value;
    if (raw === undefined || (!token.inlineValue && raw.startsWith('--'))) {
      throw new CliError(`cbloss ${command}: option --${name} needs a value (${spec.value ?? spec.type})`);
    }
    if (spec.choices && !spec.choices.includes(raw)) {
      throw new CliError(`cbloss ${command}: --${name} must be one of ${spec.choices.join(', ')}, not '${raw}'`);
    }
    if (spec.type === 'number') {
      const v = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(v)) throw new CliError(`cbloss ${command}: --${name} must be a number, not '${raw}'`);
      out[name] = v;
    } else {
      out[name] = raw;
    }
  }
  return out;
}

export function helpText(usage: string, description: string, specs: readonly OptionSpec[]): string {
  const rows = specs.map((s) => {
    const left = `  --${s.name}${s.type === 'boolean' ? '' : ` ${s.value ?? s.type.toUpperCase()}`}`;
    const extra = s.choices ? ` (${s.choices.join('|')})` : '';
    const def = s.default !== undefined && s.type !== 'boolean' ? ` [default: ${s.default}]` : '';
    return [left, `${s.help}${extra}${def}`];
  });
  const width = Math.max(...rows.map(([l]) => l.length)) + 2;
  return `${usage}\n\n${description}\n\nOptions:\n${rows.map(([l, r]) => l.padEnd(width) + r).join('\n')}\n  --help${' '.repeat(Math.max(1, width - 8))}show this help\n`;
}
