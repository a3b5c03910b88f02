/**
 * Bridges and taps for VM tests — only ever inside a private network
 * namespace. The test runner (scripts/test.mjs) runs every test as root
 * under `unshare -n`; these helpers refuse to touch the network unless the
 * process's network namespace differs from PID 1's (the host's), so a test
 * started any other way cannot add addresses or devices to the machine.
 *
 *   const lan = await testBridge(t, { bridge: 'fbr0', address: '10.77.0.1', prefixLength: 24 });
 *   const tap = await lan.addTap('ftap0');
 *
 * Everything created is deleted in `t.after` (also when the test fails).
 */
import { execFile } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/** Runs a command (ip, nsenter…); a failure names the command and carries its stderr. */
export async function run(cmd: string, args: readonly string[]): Promise<void> {
  try {
    await execFileP(cmd, args);
  } catch (err) {
    const e = err as { stderr?: string; message: string }; // child_process error shape
    throw new Error(`${cmd} ${args.join(' ')}: ${e.stderr?.trim() || e.message}`, { cause: err });
  }
}

/**
 * True when this process provably runs in a network namespace of its own.
 * Proof: its namespace differs from PID 1's; where PID 1's is not readable
 * (containers, restricted /proc), the test runner's FLINT_TEST_NETNS=1 mark
 * together with the absence of any default route (a fresh `unshare -n`
 * namespace has none; a host that can reach anything has one).
 */
export async function inPrivateNetns(): Promise<boolean> {
  try {
    return readlinkSync('/proc/self/ns/net') !== readlinkSync('/proc/1/ns/net');
  } catch {
    if (process.env.FLINT_TEST_NETNS !== '1') return false;
    try {
      const v4 = await execFileP('ip', ['-4', 'route', 'show', 'default']);
      const v6 = await execFileP('ip', ['-6', 'route', 'show', 'default']);
      return v4.stdout.trim() === '' && v6.stdout.trim() === '';
    } catch {
      return false;
    }
  }
}

async function ip(...args: string[]): Promise<void> {
  try {
    await execFileP('ip', args);
  } catch (err) {
    const e = err as { stderr?: string; message: string }; // child_process error shape
    throw new Error(`ip ${args.join(' ')}: ${e.stderr?.trim() || e.message}`, { cause: err });
  }
}

export interface TestBridge {
  readonly bridge: string;
  readonly address: string;
  readonly prefixLength: number;
  readonly v6?: { readonly address: string; readonly prefixLength: number };
  /** Creates a tap on the bridge, up; removed after the test. `owner`: the uid/gid that may open it (as host networking does for a VM). */
  addTap(name: string, owner?: { uid: number; gid: number }): Promise<string>;
}

export async function testBridge(
  t: TestContext,
  opts: { bridge: string; address: string; prefixLength: number; v6?: { address: string; prefixLength: number } },
): Promise<TestBridge> {
  if (!(await inPrivateNetns())) {
    throw new Error('refusing to create bridges or taps in the host network namespace: run the test through scripts/test.mjs (as root it uses `unshare -n`)');
  }
  const created: string[] = [];
  t.after(async () => {
    for (const dev of created.reverse()) await ip('link', 'del', dev).catch(() => undefined);
  });
  await ip('link', 'set', 'lo', 'up');
  await ip('link', 'add', opts.bridge, 'type', 'bridge');
  created.push(opts.bridge);
  await ip('addr', 'add', `${opts.address}/${opts.prefixLength}`, 'dev', opts.bridge);
  // nodad: usable at once, no duplicate-address wait in a namespace that has no duplicates.
  if (opts.v6) await ip('-6', 'addr', 'add', `${opts.v6.address}/${opts.v6.prefixLength}`, 'dev', opts.bridge, 'nodad');
  await ip('link', 'set', opts.bridge, 'up');
  return {
    ...opts,
    async addTap(name: string, owner?: { uid: number; gid: number }) {
      await ip('tuntap', 'add', 'dev', name, 'mode', 'tap', ...(owner === undefined ? [] : ['user', String(owner.uid), 'group', String(owner.gid)]));
      created.push(name);
      await ip('link', 'set', name, 'master', opts.bridge);
      await ip('link', 'set', name, 'up');
      return name;
    },
  };
}
