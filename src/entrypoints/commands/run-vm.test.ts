/**
 * `flint run --interactive` on a real pseudo-terminal (util-linux `script`
 * gives the command a pty; this test types into it): a real VM of the test
 * image boots with its serial console on the terminal, a line typed at the
 * terminal reaches a program in the guest, Ctrl-] leaves, and nothing of
 * the VM is left on the host.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { program, requirePrereqs, root } from '../../../test/helpers/prereq.ts';
import { ensureTestImage } from '../../../test/helpers/test-image.ts';
import { leftovers, makeRealSystem } from '../../../test/vm/real-system.ts';

const flint = fileURLToPath(new URL('../../../bin/flint.mjs', import.meta.url));

/** Single-quotes a word for sh. */
const q = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

test('interactive mode on a terminal: console on the pty, typed input reaches the guest, Ctrl-] stops the VM and cleans up', async (t) => {
  if (!requirePrereqs(t, root, program('qemu-system-x86_64'), program('script'), program('nft'))) return;
  const image = await ensureTestImage();
  const instanceId = 'li1';
  const subnet = '221.9';
  const stateDir = mkdtempSync(join(tmpdir(), 'flint-li1-'));
  // QEMU runs as the runner's uid (123 by default) and must pass through the state dir.
  chmodSync(stateDir, 0o711);
  // Removes the bridge, its NAT table and the state dir (the system is built
  // on the same names the config below uses).
  t.after(async () => (await makeRealSystem({ instanceId, subnet, stateDir })).destroy());
  const config = join(stateDir, 'flint.yaml');
  writeFileSync(config, `
logLevel: warn
address: 127.0.0.1:8080
stateDir: ${stateDir}
instanceId: ${instanceId}
networks:
  - name: flb${instanceId}
    v4: 10.${subnet}.1/24
    create: true
github:
  appID: 1
  organization: example
  webhookSecret: not-used-here
  privateKey: not-used-here
runners:
  - name: test
    labels: [self-hosted]
    kernel: ${image.kernel}
    initrd: ${image.initrd}
    filesystem: ${image.rootfs}
    hypervisor: qemu
    network: flb${instanceId}
    cpuCount: 1
    memorySize: 256
    diskSize: 1GiB
    kernelArgs: "${image.kernelArgs}"
`);
  // The guest program reads one line from the serial console and answers on it.
  const guestCommand = 'read -r line </dev/ttyS0; echo "guest got: $line" >/dev/ttyS0; sleep 600';
  const cmd = [process.execPath, flint, 'run', '--interactive', 'test', '--config', config, '--env', `FLINT_RUNNER_COMMAND=${guestCommand}`].map(q).join(' ');
  const proc = spawn('script', ['-qfec', cmd, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, FLINT_FROM_SOURCE: '1', TERM: 'dumb' } });
  t.after(() => { if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL'); });
  let out = '';
  proc.stdout.on('data', (d: Buffer) => { out += d.toString('latin1'); });
  proc.stderr.on('data', (d: Buffer) => { out += d.toString('latin1'); });
  const exit = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const until = (pattern: RegExp, what: string) => new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => { if (pattern.test(out)) { clearInterval(timer); resolve(); } }, 50);
    void exit.then(() => { clearInterval(timer); if (!pattern.test(out)) reject(new Error(`flint ended before ${what}:\n${out.slice(-3000)}`)); });
  });

  await until(/FLINT-MARKER runner-started/, 'the runner started');
  const vmId = /flint: VM (\S+) of runner "test" starting/.exec(out)?.[1];
  assert.ok(vmId !== undefined, out.slice(0, 2000));
  // The guest's `read` may not be waiting yet; the tty buffers the line anyway.
  await new Promise((r) => setTimeout(r, 500));
  proc.stdin.write('hello from the terminal\r');
  await until(/guest got: hello from the terminal/, 'the guest echoed the typed line');
  proc.stdin.write(Buffer.from([0x1d])); // Ctrl-]
  assert.equal(await exit, 0, out.slice(-3000));
  assert.match(out, /Ctrl-\] pressed; stopping the VM/);
  assert.match(out, new RegExp(`VM ${vmId} stopped \\(Ctrl-\\] pressed\\)`));
  assert.deepEqual(leftovers({ stateDir, instanceId }, [vmId]), []);
});
