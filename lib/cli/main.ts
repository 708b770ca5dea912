// The `cbloss` command: demo, score, info, bench. Errors are one line on stderr and a non-zero exit
// code (2 for a bad command line, 1 for bad data or files).
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

import { backendInfo, devices } from '../device';
import { CliError, helpText, parseOptions, type OptionSpec } from './args';
import { DEMO_HELP, demo, formatDemo } from './demo';
import { SCORE_HELP, formatScore, score } from './score';

const INFO_OPTIONS: readonly OptionSpec[] = [{ name: 'json', type: 'boolean', help: 'print JSON' }];
const INFO_HELP = helpText('Usage: cbloss info [--json]', 'Version, backends, devices, CPU kernel level and threads.', INFO_OPTIONS);
const BENCH_OPTIONS: readonly OptionSpec[] = [
  { name: 'long', type: 'boolean', help: 'a larger time budget per measurement' },
  { name: 'no-torch', type: 'boolean', help: 'skip PyTorch' },
  { name: 'no-tfjs', type: 'boolean', help: 'skip tf.js' },
  { name: 'no-js', type: 'boolean', help: 'skip the plain JavaScript loop' },
];
const BENCH_HELP = helpText('Usage: cbloss bench [options]', 'Runs the benchmark (the same as `npm run bench` in a clone).', BENCH_OPTIONS);

const USAGE = `Usage: cbloss <command> [options]

Commands:
  demo    train on long-tailed MNIST with CE, focal, class-balanced, Balanced Softmax and LDAM-DRW; compare recall
  score   compute a loss (and its gradient) over logits and targets in .npy or raw files
  info    version, backends, devices, SIMD level, threads
  bench   run the benchmark

Run 'cbloss <command> --help' for the options of a command.
`;

function info(argv: readonly string[]): string {
  const o = parseOptions('info', argv, INFO_OPTIONS);
  const b = backendInfo();
  const d = devices();
  if (o.json) return JSON.stringify({ ...b, devices: d });
  const emulated = b.cuda.emulated ? ', the CPU emulator of CUDA (a test build)' : '';
  const cuda = b.cuda.available
    ? `available (${b.cuda.deviceCount} device(s)${emulated})`
    : `not available: ${b.cuda.reason}`;
  return [
    `cbloss ${b.version}`,
    `CPU: kernels ${b.cpu.simd} (best ${b.cpu.bestSimd}), ${b.cpu.threads} threads (${b.cpu.hardwareThreads} logical processors)`,
    `CUDA: compiled ${b.compiled.cuda ? 'yes' : 'no'}; ${cuda}`,
    `devices: ${d.map((x) => `${x.device} (${x.name})`).join(', ')}`,
    `default device: ${b.defaultDevice}${b.deviceOverride ? ` (CBLOSS_DEVICE=${b.deviceOverride})` : ''}`,
  ].join('\n');
}

function bench(argv: readonly string[]): number {
  parseOptions('bench', argv, BENCH_OPTIONS);
  const script = path.join(__dirname, '..', '..', 'bench', 'run.js');
  const r = spawnSync(process.execPath, [script, ...argv], { stdio: 'inherit' });
  return r.status ?? 1;
}

/** Runs the command line; returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  const out = (text: string): void => {
    process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  };
  const helps: Record<string, string> = { demo: DEMO_HELP, score: SCORE_HELP, info: INFO_HELP, bench: BENCH_HELP };
  try {
    if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
      out(USAGE);
      return command === undefined ? 2 : 0;
    }
    if (!(command in helps)) throw new CliError(`cbloss: unknown command '${command}' (commands: demo, score, info, bench)`);
    if (rest.includes('--help') || rest.includes('-h')) {
      out(helps[command]);
      return 0;
    }
    switch (command) {
      case 'demo': {
        const r = await demo(rest);
        out(formatDemo(r, rest.includes('--json')));
        return 0;
      }
      case 'score':
        out(formatScore(score(rest), rest.includes('--json')));
        return 0;
      case 'info':
        out(info(rest));
        return 0;
      default:
        return bench(rest);
    }
  } catch (err) {
    if (err instanceof CliError) {
      process.stderr.write(`${err.message.split('\n')[0]}\n`);
      return err.exitCode;
    }
    process.stderr.write(`cbloss ${command}: ${(err as Error).message.split('\n')[0]}\n`);
    return 1;
  }
}
