// The `cbloss` command end to end: .npy files written by hand (an independent check of the reader)
// and by the command's writer, scoring equal to the library, the gradient file, every bad input as a
// one-line error with a non-zero exit code, and `demo --quick` producing its table and chart.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import * as cbloss from '../lib';
import { writeNpy } from '../lib/cli/npy';
import { assertGradClose, assertLossClose, randomLogits, rng } from './helpers';
import { lossEntries, type CliFixture } from './losses';

const root = path.join(__dirname, '..');
const bin = path.join(root, 'bin', 'cbloss.js');

function run(args: string[], timeout = 120_000): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: root, encoding: 'utf8', timeout });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** A .npy file assembled byte by byte here, not with the writer under test. */
function handNpy(file: string, descr: string, shape: number[], data: ArrayBufferView, fortran = false): void {
  let header = `{'descr': '${descr}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  while ((10 + header.length + 1) % 64 !== 0) header += ' ';
  header += '\n';
  const head = Buffer.alloc(10);
  head[0] = 0x93;
  head.write('NUMPY', 1, 'latin1');
  head[6] = 1;
  head.writeUInt16LE(header.length, 8);
  fs.writeFileSync(file, Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]));
}

/** Reads a float32 .npy file (C order) written by the command. */
function readNpyF32(file: string): { shape: number[]; data: Float32Array } {
  const buf = fs.readFileSync(file);
  const len = buf.readUInt16LE(8);
  const header = buf.toString('latin1', 10, 10 + len);
  assert.match(header, /'descr': '<f4'/);
  const shape = /'shape': \(([^)]*)\)/.exec(header)![1].split(',').filter((s) => s.trim()).map(Number);
  const bytes = buf.subarray(10 + len);
  return { shape, data: new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)) };
}

describe('90 the cbloss command', () => {
  let dir: string;
  const N = 50;
  const C = 7;
  const rand = rng(90);
  const x = randomLogits(rand, N * C);
  const y = Int32Array.from({ length: N }, () => Math.floor(rand() * C));
  const t = Float32Array.from({ length: N * C }, () => (rand() < 0.3 ? 1 : 0));
  const sampleWeight = Float32Array.from({ length: N }, () => Math.fround(rand() * 2));
  const elementWeight = Float32Array.from({ length: N * C }, () => Math.fround(rand() * 2));
  const counts = [500, 300, 200, 80, 40, 20, 5];

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbloss-cli-'));
    handNpy(path.join(dir, 'x.npy'), '<f4', [N, C], x);
    handNpy(path.join(dir, 'x64.npy'), '<f8', [N, C], Float64Array.from(x));
    handNpy(path.join(dir, 'y.npy'), '<i4', [N], y);
    handNpy(path.join(dir, 'y64.npy'), '<i8', [N, 1], BigInt64Array.from(Array.from(y, BigInt)));
    handNpy(path.join(dir, 't.npy'), '<f4', [N, C], t);
    handNpy(path.join(dir, 'sw.npy'), '<f4', [N], sampleWeight);
    handNpy(path.join(dir, 'swe.npy'), '<f8', [N, C], Float64Array.from(elementWeight));
    fs.writeFileSync(path.join(dir, 'x.raw'), Buffer.from(x.buffer));
    fs.writeFileSync(path.join(dir, 'y.raw'), Buffer.from(y.buffer));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const p = (name: string): string => path.join(dir, name);

  it('--help on the command and each subcommand', () => {
    const top = run(['--help']);
    assert.equal(top.code, 0);
    assert.match(top.stdout, /Commands:\n\s+demo/);
    for (const sub of ['demo', 'score', 'info', 'bench']) {
      const r = run([sub, '--help']);
      assert.equal(r.code, 0, sub);
      assert.match(r.stdout, new RegExp(`Usage: cbloss ${sub}`));
      assert.match(r.stdout, /Options:/);
    }
  });

  it('info prints the version, backends and threads', () => {
    const r = run(['info', '--json']);
    assert.equal(r.code, 0);
    const info = JSON.parse(r.stdout) as { version: string; cpu: { threads: number }; devices: Array<{ device: string }> };
    assert.equal(info.version, cbloss.backendInfo().version);
    assert.equal(info.devices[0].device, 'cpu');
  });

  /** Each loss's --loss name (the descriptor's, test/losses.ts). */
  const cliNames = lossEntries().flatMap(([, entry]) => (entry.cli ? [entry.cli.name] : []));

  it("score's --loss names are the loss descriptor's, one for each loss but ClassBalancedLoss", () => {
    const help = run(['score', '--help']);
    assert.equal(help.code, 0);
    const usage = /\[--loss ([a-z|-]+)\]/.exec(help.stdout);
    assert.ok(usage, `a --loss NAME|… in the usage: ${help.stdout}`);
    assert.deepEqual(usage[1].split('|').sort(), [...cliNames].sort(), 'the usage line');
    const refused = run(['score', '--logits', p('x.npy'), '--targets', p('y.npy'), '--loss', 'hinge']);
    const choices = /--loss must be one of ([a-z, -]+), not 'hinge'/.exec(refused.stderr);
    assert.ok(choices, refused.stderr);
    assert.deepEqual(choices[1].split(', ').sort(), [...cliNames].sort(), 'the choices an unknown --loss is told');
    assert.equal(new Set(cliNames).size, cliNames.length, 'one name a loss');
  });

  it('score equals the library for each loss, from float32, float64, int64 and raw files', () => {
    const fixture: CliFixture = {
      N,
      C,
      x,
      labels: y,
      elements: t,
      classCounts: counts,
      rowWeights: sampleWeight,
      files: { labels: p('y.npy'), elements: p('t.npy'), rowWeights: p('sw.npy') },
    };
    // Each loss's run (the descriptor's), then the file formats, the class-balanced wrapper, and the
    // logit map's and the per-call options on some of them.
    const cases: Array<[string[], number]> = lossEntries().flatMap(([, { cli }]): Array<[string[], number]> =>
      cli
        ? [[['--logits', p('x.npy'), '--targets', fixture.files[cli.targets], '--loss', cli.name, ...cli.args(fixture)], cli.expected(fixture)]]
        : [],
    );
    cases.push(
      [['--logits', p('x64.npy'), '--targets', p('y64.npy'), '--loss', 'ce'], new cbloss.CrossEntropyLoss().forward(x, y)],
      [['--logits', p('x.raw'), '--shape', `${N},${C}`, '--targets', p('y.raw'), '--loss', 'ce'], new cbloss.CrossEntropyLoss().forward(x, y)],
      [
        ['--logits', p('x.npy'), '--targets', p('t.npy'), '--loss', 'asl', '--samples-per-class', '500,300,200,80,40,20,5', '--beta', '0.99'],
        new cbloss.ClassBalancedLoss({ samplesPerCls: [500, 300, 200, 80, 40, 20, 5], beta: 0.99, numClasses: C, lossFunc: new cbloss.AsymmetricLoss({ reduction: 'none' }) }).forward(x, t),
      ],
      [
        ['--logits', p('x.npy'), '--targets', p('y.npy'), '--loss', 'focal', '--samples-per-class', '500,300,200,80,40,20,5', '--beta', '0.999', '--reduction', 'weightedmean'],
        new cbloss.ClassBalancedLoss({ samplesPerCls: [500, 300, 200, 80, 40, 20, 5], beta: 0.999, numClasses: C, reduction: 'weightedmean', lossFunc: new cbloss.FocalLoss({ numClasses: C, reduction: 'none' }) }).forward(x, y),
      ],
    );
    // Logit maps and per-call options from the command line: the long-tail losses' options, the map,
    // per-sample weights
    const list = counts.join(',');
    cases.push(
      [['--logits', p('x.npy'), '--targets', p('y.npy')], new cbloss.CrossEntropyLoss().forward(x, y)], // (--loss defaults to ce)
      [
        ['--logits', p('x.npy'), '--targets', p('y.npy'), '--loss', 'balanced-softmax', '--samples-per-class', list, '--tau', '0.5', '--beta', '0.99', '--reduction', 'weightedmean'],
        new cbloss.ClassBalancedLoss({ samplesPerCls: counts, beta: 0.99, numClasses: C, reduction: 'weightedmean', lossFunc: new cbloss.BalancedSoftmaxLoss({ samplesPerCls: counts, tau: 0.5, reduction: 'none' }) }).forward(x, y),
      ],
      [
        ['--logits', p('x.npy'), '--targets', p('y.npy'), '--loss', 'focal', '--logit-bias', '1,0,0,0,0,0,-1', '--scale', '2'],
        new cbloss.FocalLoss({ numClasses: C, logitBias: [1, 0, 0, 0, 0, 0, -1], scale: 2 }).forward(x, y),
      ],
      [
        ['--logits', p('x.npy'), '--targets', p('t.npy'), '--loss', 'bce', '--sample-weight', p('swe.npy')],
        new cbloss.BCEWithLogitsLoss({ numClasses: C }).forward(x, t, { sampleWeight: elementWeight }),
      ],
    );
    for (const [args, expected] of cases) {
      for (const chunk of [[], ['--chunk-rows', '7']]) {
        const r = run(['score', ...args, ...chunk, '--json']);
        assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
        const out = JSON.parse(r.stdout) as { loss: number; perClass: Array<{ count: number }> };
        assertLossClose(out.loss, expected, args.join(' '));
        assert.equal(out.perClass.length, C);
      }
    }
  });

  it('score prints per-class counts and mean losses as text', () => {
    const r = run(['score', '--logits', p('x.npy'), '--targets', p('y.npy'), '--loss', 'ce']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^loss \(ce, mean\): [0-9.]+/);
    const counts = Array.from({ length: C }, (_, c) => y.filter((v) => v === c).length);
    const lines = r.stdout.split('\n').filter((l) => /^\s+\d+\s+\d+\s+[0-9.]+$/.test(l));
    assert.deepEqual(lines.map((l) => Number(l.trim().split(/\s+/)[1])), counts);
  });

  it('--grad writes the gradient of the reduced loss as .npy, across chunks', () => {
    const gradFile = p('g.npy');
    const r = run(['score', '--logits', p('x.npy'), '--targets', p('y.npy'), '--loss', 'ce', '--grad', gradFile, '--chunk-rows', '8']);
    assert.equal(r.code, 0, r.stderr);
    const g = readNpyF32(gradFile);
    assert.deepEqual(g.shape, [N, C]);
    assertGradClose(g.data, new cbloss.CrossEntropyLoss().forwardBackward(x, y).grad, 'grad file');
  });

  it("the command's .npy writer round-trips through its reader", () => {
    const data = randomLogits(rng(5), 12);
    writeNpy(p('w.npy'), [3, 4], data);
    const r = run(['score', '--logits', p('w.npy'), '--targets', p('y.npy'), '--loss', 'ce']);
    assert.notEqual(r.code, 0, 'shapes differ from y: an error');
    assert.deepEqual(readNpyF32(p('w.npy')).data, data);
    handNpy(p('y3.npy'), '<i4', [3], Int32Array.from([0, 3, 2]));
    const ok = run(['score', '--logits', p('w.npy'), '--targets', p('y3.npy'), '--loss', 'ce', '--json']);
    assert.equal(ok.code, 0, ok.stderr);
    assertLossClose((JSON.parse(ok.stdout) as { loss: number }).loss, new cbloss.CrossEntropyLoss().forward(data, [0, 3, 2]), 'round trip');
  });

  describe('bad input: one line naming the file or option, non-zero exit', () => {
    const bad: Array<[string, () => string[], RegExp, number]> = [
      ['unknown command', () => ['frobnicate'], /^cbloss: unknown command 'frobnicate'/, 2],
      ['unknown option', () => ['score', '--logitz', 'a'], /^cbloss score: unknown option '--logitz'/, 2],
      ['missing option', () => ['score', '--logits', p('x.npy'), '--loss', 'ce'], /^cbloss score: missing --targets/, 2],
      // (the option errors of lib/cli/args.ts over util.parseArgs's tokens)
      ['an option without its value', () => ['demo', '--seeds'], /^cbloss demo: option --seeds needs a value \(K\)$/, 2],
      ['an option followed by another', () => ['demo', '--seeds', '--quick'], /^cbloss demo: option --seeds needs a value \(K\)$/, 2],
      ['a flag with a value', () => ['demo', '--quick=1'], /^cbloss demo: option --quick takes no value$/, 2],
      ['a positional argument', () => ['demo', 'now'], /^cbloss demo: unexpected argument 'now' \(see cbloss demo --help\)$/, 2],
      ['a short option', () => ['score', '-x'], /^cbloss score: unexpected argument '-x'/, 2],
      ['an empty number', () => ['demo', '--seeds='], /^cbloss demo: --seeds must be a number, not ''$/, 2],
      // (the names it lists: the --loss names test above)
      ['bad --loss', () => ['score', '--logits', p('x.npy'), '--targets', p('y.npy'), '--loss', 'hinge'], /--loss must be one of [a-z, -]+, not 'hinge'/, 2],
      ['bad --gamma', () => ['score', '--logits', p('x.npy'), '--targets', p('y.npy'), '--loss', 'focal', '--gamma', 'x'], /--gamma must be a number/, 2],
      ['negative --gamma', () => ['score', '--logits', p('x.npy'), '--targets', p('y.npy'), '--loss', 'focal', '--gamma', '-1'], /gamma/, 2],
      ['missing file', () => ['score', '--logits', p('nope.npy'), '--targets', p('y.npy'), '--loss', 'ce'], /--logits .*nope\.npy: cannot open \(ENOENT\)/, 1],
      ['not an npy', () => ['score', '--logits', p('x.raw'), '--targets', p('y.npy'), '--loss', 'ce'], /--logits .*x\.raw: not a valid \.npy file/, 1],
      ['integer logits', () => ['score', '--logits', p('y.npy'), '--targets', p('y.npy'), '--loss', 'ce'], /--logits .*y\.npy: logits must be float32 or float64, not int32/, 1],
      ['shape mismatch', () => ['score', '--logits', p('x.npy'), '--targets', p('y3.npy'), '--loss', 'ce'], /--targets .*y3\.npy: 3 values do not match/, 1],
      ['label out of range', () => ['score', '--logits', p('x.npy'), '--targets', p('ybad.npy'), '--loss', 'ce', '--chunk-rows', '10'], /--targets .*ybad\.npy: target\[45\] = 9 is out of range \[0, 7\)/, 1],
      ['truncated file', () => ['score', '--logits', p('trunc.npy'), '--targets', p('y.npy'), '--loss', 'ce'], /--logits .*trunc\.npy: truncated/, 1],
      ['fortran order', () => ['score', '--logits', p('fortran.npy'), '--targets', p('y.npy'), '--loss', 'ce'], /Fortran order/, 1],
      ['unsupported dtype', () => ['score', '--logits', p('big.npy'), '--targets', p('y.npy'), '--loss', 'ce'], /unsupported dtype '>f4'/, 1],
      ['float targets for focal', () => ['score', '--logits', p('x.npy'), '--targets', p('t.npy'), '--loss', 'focal'], /focal with 7 classes takes class indices/, 1],
      ['counts without beta', () => ['score', '--logits', p('x.npy'), '--targets', p('y.npy'), '--loss', 'ce', '--samples-per-class', '1,2,3,4,5,6,7'], /--samples-per-class and --beta go together/, 2],
      ['wrong number of counts', () => ['score', '--logits', p('x.npy'), '--targets', p('y.npy'), '--loss', 'ce', '--samples-per-class', '1,2', '--beta', '0.9'], /has 2 counts, the logits have 7 classes/, 2],
      ['int64 target beyond 32 bits, named as stored', () => ['score', '--logits', p('x.npy'), '--targets', p('ybig.npy')], /--targets .*ybig\.npy: target\[3\] = 1099511627776 is out of range \(not a 32-bit integer\)/, 1],
      ['long-tail loss without counts', () => ['score', '--logits', p('x.npy'), '--targets', p('y.npy'), '--loss', 'ldam'], /--loss ldam needs --samples-per-class/, 2],
      ['bias on bce', () => ['score', '--logits', p('x.npy'), '--targets', p('t.npy'), '--loss', 'bce', '--logit-bias', '1,2'], /--scale and --logit-bias are for ce, focal/, 2],
      ['bias of the wrong length', () => ['score', '--logits', p('x.npy'), '--targets', p('y.npy'), '--logit-bias', '1,2'], /--logit-bias must list 7 finite numbers/, 2],
      ['sample weights of the wrong length', () => ['score', '--logits', p('x.npy'), '--targets', p('y.npy'), '--sample-weight', p('swe.npy')], /--sample-weight .*we\.npy: 350 values, expected 50 \(one per row\)/, 1],
      ['avg-factor with sum', () => ['score', '--logits', p('x.npy'), '--targets', p('y.npy'), '--reduction', 'sum', '--avg-factor', '3'], /--avg-factor is the divisor of the mean reductions/, 2],
      ['bad raw shape', () => ['score', '--logits', p('x.raw'), '--shape', '50,x', '--targets', p('y.npy'), '--loss', 'ce'], /--shape must be N or N,C/, 2],
      ['cuda without a GPU', () => ['score', '--logits', p('x.npy'), '--targets', p('y.npy'), '--loss', 'ce', '--device', 'cuda'], /CUDA is not usable/, 2],
      ['bad demo option', () => ['demo', '--imbalance', '7'], /--imbalance must be one of 10, 50, 100, not '7'/, 2],
    ];
    before(() => {
      const ybad = y.slice();
      ybad[45] = 9;
      handNpy(p('ybad.npy'), '<i4', [N], ybad);
      const ybig = BigInt64Array.from(Array.from(y, BigInt));
      ybig[3] = 2n ** 40n;
      handNpy(p('ybig.npy'), '<i8', [N], ybig);
      const full = fs.readFileSync(p('x.npy'));
      fs.writeFileSync(p('trunc.npy'), full.subarray(0, full.length - 9));
      handNpy(p('fortran.npy'), '<f4', [N, C], x, true);
      handNpy(p('big.npy'), '>f4', [N, C], x);
    });
    for (const [name, args, message, code] of bad) {
      it(name, function () {
        if (name === 'cuda without a GPU' && cbloss.backendInfo().cuda.available) this.skip();
        const r = run(args());
        assert.equal(r.code, code, `${r.stderr}${r.stdout}`);
        assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
        assert.match(r.stderr.trim(), message);
      });
    }
  });

  it('demo --quick trains, prints its table and writes the chart', function () {
    this.timeout(180_000);
    const chart = p('recall.svg');
    const r = run(['demo', '--quick', '--seed', '3', '--chart', chart], 170_000);
    assert.equal(r.code, 0, r.stderr);
    for (const name of ['softmax CE', 'focal γ=1', 'CB CE β=0.999', 'CB focal β=0.999', 'Balanced Softmax', 'LDAM-DRW']) assert.match(r.stdout, new RegExp(`^${name}\\s+0\\.\\d{3}`, 'm'));
    assert.match(r.stdout, /balanced acc/);
    const svg = fs.readFileSync(chart, 'utf8');
    assert.match(svg, /^<svg /);
    assert.equal((svg.match(/<rect x="[0-9.]+" y="[0-9.]+" width="[0-9.]+" height="[0-9.]+" fill="#/g) ?? []).length, 60 + 6);
  });
});
