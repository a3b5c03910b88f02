import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeRig, testRunner } from '../../../test/fakes/rig.ts';
import { isFlintError } from '../../core/errors/index.ts';
import type { FlintConfig } from '../../config/types.ts';
import { DETACH_KEY, findRunner, parseRunArgs, runSession } from './run.ts';
import type { Terminal } from './run.ts';

class FakeTerminal implements Terminal {
  readonly input = Object.assign(new PassThrough(), { isTTY: true, rawModes: [] as boolean[], setRawMode(raw: boolean) { this.rawModes.push(raw); } });
  out = '';
  statusText = '';
  private signalListener: ((s: string) => void) | undefined;
  readonly output = { write: (c: Buffer | string) => { this.out += c.toString(); } };
  readonly status = { write: (c: string) => { this.statusText += c; } };
  onSignal(listener: (s: string) => void): () => void {
    this.signalListener = listener;
    return () => { this.signalListener = undefined; };
  }
  signal(s: string): void {
    this.signalListener?.(s);
  }
  subscribed(): boolean {
    return this.signalListener !== undefined;
  }
  until(text: string): Promise<void> {
    return new Promise((resolve) => {
      const check = setInterval(() => { if (this.out.includes(text)) { clearInterval(check); resolve(); } }, 10);
    });
  }
}

function terminal(): FakeTerminal {
  return new FakeTerminal();
}

test('interactive: keys reach the guest, Ctrl-] leaves, the VM is stopped and the terminal restored', async (t) => {
  const rig = makeRig({ bootMs: 50 });
  t.after(() => rig.close());
  const term = terminal();
  const session = runSession(rig.supervisor, testRunner(), {}, term, { interactive: true });
  await term.until('FLINT-MARKER booted');
  term.input.write('ls /\n');
  await term.until('echo: ls /');
  term.input.write(Buffer.from([0x61, DETACH_KEY]));
  assert.equal(await session, 0);
  assert.deepEqual(term.input.rawModes, [true, false]);
  assert.match(term.statusText, /leave with Ctrl-\]/);
  assert.match(term.statusText, /Ctrl-\] pressed; stopping the VM/);
  assert.match(term.statusText, /VM t1-00000 stopped \(Ctrl-\] pressed\)/);
  assert.equal(term.subscribed(), false, 'signal handlers are removed');
  assert.equal(rig.network.leases.size, 0);
  assert.equal(rig.supervisor.list().length, 0);
});

test('a SIGTERM during a session stops the VM and cleans up', async (t) => {
  const rig = makeRig({ bootMs: 50 });
  t.after(() => rig.close());
  const term = terminal();
  const session = runSession(rig.supervisor, testRunner(), {}, term, { interactive: true });
  await term.until('FLINT-MARKER booted');
  term.signal('SIGTERM');
  assert.equal(await session, 0);
  assert.match(term.statusText, /SIGTERM received/);
  assert.equal(rig.network.leases.size, 0);
});

test('non-interactive: the console goes to stdout and a failed VM gives exit status 1', async (t) => {
  const rig = makeRig({ bootMs: null, crash: { afterMs: 100, signal: 'SIGKILL' } });
  t.after(() => rig.close());
  const term = terminal();
  assert.equal(await runSession(rig.supervisor, testRunner(), {}, term, { interactive: false }), 1);
  assert.match(term.out, /fake guest: kernel starting/);
  assert.match(term.statusText, /failed \(the VMM exited before the guest booted/);
  assert.deepEqual(term.input.rawModes, [], 'never touches the terminal mode when not interactive');
});

test('run arguments: runner, config, repeated --env, and the original flag order', () => {
  assert.deepEqual(parseRunArgs(['--config', 'f.yaml', '--interactive', 'Default', '--env', 'FLINT_RUNNER_COMMAND=sh -c "x=1"', '--env=A_B=']), {
    runner: 'Default', config: 'f.yaml', interactive: true, env: { FLINT_RUNNER_COMMAND: 'sh -c "x=1"', A_B: '' }, help: false,
  });
  assert.throws(() => parseRunArgs(['--env', 'lower=1']), (e: unknown) => isFlintError(e, 'FLINT_ERR_USAGE'));
  assert.throws(() => parseRunArgs(['a', 'b']), (e: unknown) => isFlintError(e, 'FLINT_ERR_USAGE'));
  assert.throws(() => parseRunArgs(['--bogus']), (e: unknown) => isFlintError(e, 'FLINT_ERR_USAGE'));
});

test('a runner is found by name (case-insensitively when unambiguous); an unknown one lists the names', () => {
  const config = { source: 'c.yaml', runners: [testRunner({ name: 'Default' }), testRunner({ name: 'big' })] } as unknown as FlintConfig; // only the fields findRunner reads
  assert.equal(findRunner(config, 'Default').name, 'Default');
  assert.equal(findRunner(config, 'default').name, 'Default');
  assert.throws(() => findRunner(config, 'small'), (e: unknown) => {
    assert.ok(isFlintError(e, 'FLINT_ERR_VM_UNKNOWN_RUNNER'));
    assert.match(e.message, /"Default", "big"/);
    return true;
  });
});

test('the original form `flint --config FILE --interactive <runner>` loads the file and names an unknown runner without touching the host', async (t) => {
  const { main } = await import('../cli.ts');
  const dir = mkdtempSync(join(tmpdir(), 'flint-run-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'flint.yaml');
  // The reference system's own shape of file.
  writeFileSync(file, `networks:
  - name: br-default
    v4: 10.0.0.1/24
github:
  appID: "ID"
  organization: ORGANIZATION
  webhookSecret: WEBHOOK_SECRET
  privateKey: "-----BEGIN RSA PRIVATE KEY-----"
runners:
  - name: Default
    labels: [self-hosted]
    kernel: /nonexistent/vmlinux
    filesystem: /nonexistent/rootfs.ext4
    network: br-default
    jailer: /nonexistent/jailer
    firecracker: /nonexistent/firecracker
`);
  let err = '';
  const io = { stdout: { write: () => true }, stderr: { write: (s: string) => { err += s; } }, env: {} };
  const code = await main(['--config', file, '--interactive', 'nope'], io);
  assert.equal(code, 1, err);
  assert.match(err, /FLINT_ERR_VM_UNKNOWN_RUNNER: no runner named "nope" in .*flint\.yaml \(runners: "Default"\)/);
  assert.ok(!existsSync(join(dir, 'flint.db')), 'no state was touched');
});

test('flint run without a runner name is a usage error; --help prints the usage', async () => {
  const { main } = await import('../cli.ts');
  let out = '';
  let err = '';
  const io = { stdout: { write: (s: string) => { out += s; } }, stderr: { write: (s: string) => { err += s; } }, env: {} };
  assert.equal(await main(['run'], io), 2);
  assert.match(err, /FLINT_ERR_USAGE/);
  assert.equal(await main(['run', '--help'], io), 0);
  assert.match(out, /leave with Ctrl-\]/);
});
