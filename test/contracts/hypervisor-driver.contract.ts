/**
 * What every HypervisorDriver (daemon/vm/ports.ts) must do on the paths the
 * start-up adoption and sweep take after a crash of Flint, where a mistake
 * kills a stranger's process or leaks a VM's files: a handle whose VMM is
 * gone, or whose pid now names another process, is not adopted (and that
 * process is left alone); cleanup is idempotent, also for a VM that never
 * started. Booting a guest is covered by the real-VM tests
 * (daemon/vm/supervisor-vm.test.ts), which are too slow to repeat per driver.
 * Each implementation's test file calls `hypervisorDriverContract`.
 */
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { procStat } from '../../src/adapters/hypervisor/vmm-process.ts';
import type { HypervisorDriver, VmmHandle } from '../../src/daemon/vm/ports.ts';

export interface DriverHarness {
  readonly driver: HypervisorDriver;
  /** An instance id for the VM ids of this test. */
  readonly instanceId: string;
  close(): Promise<void>;
}

/** A process that stands for "something else now has the VMM's pid". */
async function stranger(t: TestContext): Promise<{ pid: number; startTime: string; alive: () => boolean }> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  let exited = false;
  child.once('exit', () => { exited = true; });
  t.after(() => { child.kill('SIGKILL'); });
  await new Promise((r) => child.once('spawn', r));
  const pid = child.pid ?? 0;
  const startTime = (await procStat(pid))?.startTime ?? '';
  return { pid, startTime, alive: () => !exited && child.exitCode === null && child.signalCode === null };
}

export function hypervisorDriverContract(name: string, make: (t: TestContext) => Promise<DriverHarness | undefined>): void {
  const setup = async (t: TestContext) => {
    const h = await make(t);
    if (h === undefined) return undefined;
    const dir = mkdtempSync(join(tmpdir(), 'flint-driver-contract-'));
    t.after(async () => { await h.close(); rmSync(dir, { recursive: true, force: true }); });
    return { ...h, dir };
  };
  const handleIn = (workDir: string, pid: number, startTime: string): VmmHandle => ({
    pid, startTime, controlSocket: join(workDir, 'control.sock'), consoleFile: join(workDir, 'console.out'),
  });

  test(`${name}: a handle whose VMM is gone is not adopted`, async (t) => {
    const h = await setup(t);
    if (h === undefined) return;
    const workDir = join(h.dir, `${h.instanceId}-00001`);
    mkdirSync(workDir);
    // The highest pid Linux hands out: nothing runs there.
    assert.equal(await h.driver.adopt(`${h.instanceId}-00001`, workDir, handleIn(workDir, 4194303, '1')), null);
  });

  test(`${name}: a pid that now names another process is not adopted, and that process is left alone`, async (t) => {
    const h = await setup(t);
    if (h === undefined) return;
    const other = await stranger(t);
    const workDir = join(h.dir, `${h.instanceId}-00002`);
    mkdirSync(workDir);
    const reused = handleIn(workDir, other.pid, `${Number(other.startTime) + 1}`);
    assert.equal(await h.driver.adopt(`${h.instanceId}-00002`, workDir, reused), null);
    // A signal, had one been sent, is delivered by now: a SIGKILL at once, a SIGTERM to node's default handler too.
    await delay(200);
    const st = await procStat(other.pid);
    assert.ok(other.alive() && st !== undefined && st.state !== 'Z', 'the process that took the pid was not signalled');
  });

  test(`${name}: cleanup of a VM that never started, and cleanup again, is no error and touches no other VM's work dir`, async (t) => {
    const h = await setup(t);
    if (h === undefined) return;
    const mine = join(h.dir, `${h.instanceId}-00003`);
    const neighbour = join(h.dir, `${h.instanceId}-00004`);
    mkdirSync(mine);
    mkdirSync(neighbour);
    await h.driver.cleanup(`${h.instanceId}-00003`, mine);
    await h.driver.cleanup(`${h.instanceId}-00003`, mine);
    await h.driver.cleanup(`${h.instanceId}-00005`, join(h.dir, `${h.instanceId}-00005`));
    assert.ok(existsSync(neighbour));
  });
}
