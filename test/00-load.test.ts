// The package loads by its name from CommonJS and ESM, and reports its backends.
import { strict as assert } from 'node:assert';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import * as cbloss from '../lib';
import type { NativeCudaStatus, NativeDevice } from '../binding';
import { AUTO_CUDA_MIN_ELEMENTS, autoCudaDevice, autoPicksCuda } from '../lib/device';
import { binding, contractMismatch } from '../lib/native';
import { lossEntries, lossNames } from './losses';
import type { LossName } from './reference';

const root = path.join(__dirname, '..');

describe('00 loading and backend info', () => {
  it("the addon's calling contract (config slots, run arguments, loss kinds) is lib/'s; another is refused", () => {
    const abi = binding.abi();
    assert.equal(contractMismatch(abi), null);
    assert.deepEqual(abi.lossKinds.map((k) => k.name), ['CrossEntropy', 'BCEWithLogits', 'FocalSoftmax', 'FocalBinary', 'SigmoidFocal', 'Poly', 'Asymmetric']);
    assert.match(contractMismatch(undefined) ?? '', /reports no calling contract/);
    assert.match(contractMismatch({ ...abi, configSlots: abi.configSlots.slice(0, -1) }) ?? '', /^its config slots are \[kind, rows/);
    assert.match(contractMismatch({ ...abi, runArguments: [...abi.runArguments].reverse() }) ?? '', /^its run arguments are \[gradOut/);
    const renumbered = abi.lossKinds.map((k) => (k.name === 'Poly' ? { ...k, ignoreIndex: false } : k));
    assert.match(contractMismatch({ ...abi, lossKinds: renumbered }) ?? '', /^its loss kinds are/);
    assert.match(contractMismatch({ ...abi, lossKinds: abi.lossKinds.slice(0, 5) }) ?? '', /^its loss kinds are/);
  });

  it('an addon built from other sources is refused at load with how to rebuild', () => {
    // A stand-in addon whose contract lacks a slot, loaded through CBLOSS_ADDON in a child process.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbloss-stale-'));
    const stale = path.join(dir, 'stale.js');
    fs.writeFileSync(
      stale,
      `const real = require(${JSON.stringify(process.env.CBLOSS_ADDON ? path.resolve(process.env.CBLOSS_ADDON) : path.join(root, 'build', 'Release', 'cbloss.node'))});
       module.exports = { ...real, abi: () => ({ ...real.abi(), configSlots: real.abi().configSlots.slice(0, 12) }) };`,
    );
    const r = spawnSync(process.execPath, ['-e', "require('./dist/index.js')"], { cwd: root, encoding: 'utf8', env: { ...process.env, CBLOSS_ADDON: stale } });
    fs.rmSync(dir, { recursive: true, force: true });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /the native addon \S*stale\.js \(CBLOSS_ADDON\) was built from other sources than this lib\/: its config slots are .* Rebuild it with `npm run build:native`/);
  });

  it("require('cbloss') and import from 'cbloss' give the same classes", () => {
    const script = `
      const cjs = require('cbloss');
      import('cbloss').then((esm) => {
        const same = esm.FocalLoss === cjs.FocalLoss && esm.default === cjs;
        const v = new esm.FocalLoss({ numClasses: 2 }).forward(new Float32Array([2.1, 0.5, 2.1, 0.5]), new Float32Array([0, 1, 1, 0]));
        console.log(JSON.stringify({ same, v, names: Object.keys(esm).sort() }));
      });`;
    const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { cwd: root, encoding: 'utf8' })) as {
      same: boolean;
      v: number;
      names: string[];
    };
    assert.ok(out.same);
    assert.ok(Math.abs(out.v - 0.551209) < 1e-6);
    const expected = [...lossEntries().flatMap(([name, entry]) => [name, ...entry.companions]), 'backendInfo', 'devices'];
    for (const name of expected) assert.ok(out.names.includes(name), name);
  });

  it('the loss descriptor (test/losses.ts) has an entry for each loss class lib exports, and only those', () => {
    const exported = cbloss as unknown as Record<string, unknown>;
    // A loss class: an export named …Loss whose prototype is a Loss (the base class itself is not one).
    const lossClasses = Object.keys(exported).filter((name) => {
      const value = exported[name];
      return /.Loss$/.test(name) && typeof value === 'function' && value.prototype instanceof cbloss.Loss;
    });
    const undescribed = lossClasses.filter((name) => !lossNames.includes(name as LossName));
    assert.deepEqual(undescribed, [], 'loss classes lib exports without an entry in test/losses.ts');
    const unexported = lossEntries()
      .filter(([name, entry]) => exported[name] !== entry.ctor)
      .map(([name]) => name);
    assert.deepEqual(unexported, [], 'entries of test/losses.ts whose constructor is not the class lib exports under their name');
    for (const [name, entry] of lossEntries()) {
      for (const companion of entry.companions) assert.equal(typeof exported[companion], 'function', `${name}'s companion ${companion}`);
    }
  });

  it('loading and using cbloss does not load tf.js (an optional peer)', () => {
    const script = `
      const c = require('cbloss');
      new c.CrossEntropyLoss().forwardBackward(new Float32Array([1, 2, 3]), [0]);
      console.log(Object.keys(require.cache).filter((k) => k.includes('@tensorflow')).length);`;
    assert.equal(execFileSync(process.execPath, ['-e', script], { cwd: root, encoding: 'utf8' }).trim(), '0');
  });

  it('when the addon cannot load, the error lists what was tried and how to build it', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbloss-noaddon-'));
    try {
      fs.cpSync(path.join(root, 'dist'), path.join(dir, 'dist'), { recursive: true });
      fs.copyFileSync(path.join(root, 'package.json'), path.join(dir, 'package.json'));
      const r = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(path.join(dir, 'dist', 'index.js'))})`], {
        encoding: 'utf8',
        env: { ...process.env, CBLOSS_ADDON: path.join(dir, 'missing.node') },
      });
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /cbloss: the native addon could not be loaded\. Tried:/);
      assert.match(r.stderr, /missing\.node/);
      assert.match(r.stderr, /build[\\/]Release[\\/]cbloss\.node/);
      assert.match(r.stderr, /npm run build:native/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('loads the prebuilt addon of this platform where the package has no build of its own (scripts/prebuild.js)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbloss-prebuild-'));
    try {
      fs.cpSync(path.join(root, 'dist'), path.join(dir, 'dist'), { recursive: true });
      fs.copyFileSync(path.join(root, 'package.json'), path.join(dir, 'package.json'));
      fs.symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'));
      const prebuilds = path.join(dir, 'prebuilds', `${process.platform}-${process.arch}`);
      fs.mkdirSync(prebuilds, { recursive: true });
      fs.symlinkSync(cbloss.backendInfo().addon.file, path.join(prebuilds, 'node.napi.node'));
      const script = `const c = require(${JSON.stringify(dir)});
        console.log(JSON.stringify([c.backendInfo().addon, new c.FocalLoss({ numClasses: 2 }).forward(new Float32Array([2.1, 0.5]), new Float32Array([0, 1]))]));`;
      const env = { ...process.env };
      delete env.CBLOSS_ADDON;
      const [addon, value] = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', env })) as [{ file: string; source: string }, number];
      assert.equal(addon.source, 'prebuild');
      assert.equal(addon.file, path.join(prebuilds, 'node.napi.node'));
      assert.ok(Number.isFinite(value));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('backendInfo() says what was compiled, what is available and why not', () => {
    const info = cbloss.backendInfo();
    assert.equal(info.compiled.cpu, true);
    assert.equal(typeof info.compiled.cuda, 'boolean');
    assert.ok(info.cpu.threads >= 1);
    assert.ok(info.cpu.hardwareThreads >= 1);
    assert.match(info.cpu.simd, /^(scalar|sse2|avx2|avx512|neon)$/);
    assert.match(info.version, /^\d+\.\d+\.\d+/);
    if (!info.cuda.available) {
      assert.ok(info.cuda.reason.length > 10, 'a reason is given');
      if (!info.compiled.cuda) assert.match(info.cuda.reason, /without CUDA/);
    }
    assert.equal(info.cuda.compiled, info.compiled.cuda);
    assert.equal(info.cuda.architectures === '', !info.compiled.cuda, 'the architectures are named where CUDA is compiled in');
    assert.ok(fs.existsSync(info.addon.file), 'backendInfo().addon names the file loaded');
    assert.equal(info.addon.source, process.env.CBLOSS_ADDON ? 'CBLOSS_ADDON' : 'local build');
    // CBLOSS_EXPECT_CUDA_COMPILED is set by .ci/run for its two builds so that neither silently
    // turns into the other.
    const expected = process.env.CBLOSS_EXPECT_CUDA_COMPILED;
    if (expected !== undefined) assert.equal(info.compiled.cuda, expected === '1');
  });

  it('devices() lists the CPU first', () => {
    const list = cbloss.devices();
    assert.equal(list[0].device, 'cpu');
    for (const d of list.slice(1)) assert.match(d.device, /^cuda:\d+$/);
  });

  it("device 'cuda' where CUDA is not usable is an Error saying why", function () {
    if (cbloss.backendInfo().cuda.available) this.skip();
    assert.throws(
      () => new cbloss.CrossEntropyLoss({ device: 'cuda' }),
      (e: Error) => e.constructor === Error && /CUDA is not usable: .{10,}/.test(e.message),
    );
    assert.throws(() => new cbloss.CrossEntropyLoss({ device: 'cuda:1' }), /CUDA is not usable/);
  });

  it("device 'cpu' and 'auto' compute on the CPU; a bad device name is a RangeError", () => {
    for (const device of ['cpu', 'auto'] as const) {
      const v = new cbloss.CrossEntropyLoss({ device }).forward(new Float32Array([0, 0]), [0]);
      assert.ok(Math.abs(v - Math.LN2) < 1e-7);
    }
    assert.throws(() => new cbloss.CrossEntropyLoss({ device: 'gpu' as never }), {
      name: 'RangeError',
      message: "Expected 'auto', 'cpu', 'cuda' or 'cuda:N' for device but received 'gpu'",
    });
    assert.throws(() => new cbloss.CrossEntropyLoss({ device: 3 as never }), TypeError);
  });

  it("'auto' sends host arrays to the GPU only when large, CUDA usable, and pinned", () => {
    const yes = () => true;
    const no = () => false;
    assert.equal(autoPicksCuda(AUTO_CUDA_MIN_ELEMENTS, yes, yes), true);
    assert.equal(autoPicksCuda(AUTO_CUDA_MIN_ELEMENTS - 1, yes, yes), false);
    assert.equal(autoPicksCuda(AUTO_CUDA_MIN_ELEMENTS, no, yes), false);
    assert.equal(autoPicksCuda(AUTO_CUDA_MIN_ELEMENTS, yes, no), false, 'ordinary host arrays stay on the CPU');
    let asked = 0;
    const count = () => {
      asked++;
      return true;
    };
    autoPicksCuda(16, count, count);
    assert.equal(asked, 0, 'small calls ask neither CUDA nor the array (the sync call overhead)');
  });

  it("'auto' picks the first CUDA device the kernels run on, never the emulator", () => {
    const status = (available: boolean, emulated = false) => ({ available, emulated }) as NativeCudaStatus;
    const device = (index: number, unusable = '') => ({ index, unusable }) as NativeDevice;
    assert.equal(autoCudaDevice(status(true), [device(0), device(1)]), 0);
    assert.equal(autoCudaDevice(status(true), [device(0, 'compute capability 7.5, …'), device(1)]), 1);
    assert.equal(autoCudaDevice(status(false), [device(0, 'compute capability 7.5, …')]), -1);
    assert.equal(autoCudaDevice(status(false), []), -1);
    assert.equal(autoCudaDevice(status(true, true), [device(0)]), -1, 'the emulator is for tests');
  });

  it('CBLOSS_DEVICE overrides the default device', () => {
    const saved = process.env.CBLOSS_DEVICE;
    try {
      process.env.CBLOSS_DEVICE = 'tpu';
      assert.throws(() => new cbloss.FocalLoss({ numClasses: 3 }), /CBLOSS_DEVICE/);
      process.env.CBLOSS_DEVICE = 'cpu';
      assert.doesNotThrow(() => new cbloss.FocalLoss({ numClasses: 3 }));
      assert.doesNotThrow(() => new cbloss.FocalLoss({ numClasses: 3, device: 'auto' }), 'an explicit device wins');
    } finally {
      if (saved === undefined) delete process.env.CBLOSS_DEVICE;
      else process.env.CBLOSS_DEVICE = saved;
    }
  });
});
