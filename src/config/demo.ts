/**
 * The embedded configuration of `flint demo`: one network, a QEMU runner
 * definition `demo` and, when asked for, a second one `warm` with a warm
 * pool (idle runners kept booted, so a job for it starts without a boot),
 * the GitHub simulator as API. It goes through the same loader as a file
 * (rendered to YAML and parsed), so the demo can never run on a config the
 * loader would refuse.
 */
import { stringify } from 'yaml';
import { FlintError } from '../core/errors/index.ts';
import { formatProblems, parseConfig } from './load.ts';
import type { FlintConfig, HypervisorKind } from './types.ts';

export interface DemoParams {
  /** The simulator's REST base URL, e.g. http://127.0.0.1:40123. */
  readonly apiUrl: string;
  readonly appId: string | number;
  /** PEM of the App key the simulator knows. */
  readonly privateKey: string;
  readonly webhookSecret: string;
  readonly organization?: string;
  /** Absolute paths, like every path below. */
  readonly stateDir: string;
  /** Where the bridge claims go; default `<stateDir>/run`, so a throw-away demo leaves nothing in /run/flint. */
  readonly runDir?: string;
  readonly kernel: string;
  readonly initrd?: string;
  readonly filesystem: string;
  readonly hypervisor?: HypervisorKind;
  readonly jailer?: string;
  readonly firecracker?: string;
  /** Listen address for webhooks; default 127.0.0.1:8089 (port 0 picks a free port). */
  readonly address?: string;
  readonly network?: { readonly name: string; readonly v4: string; readonly create?: boolean };
  readonly labels?: readonly string[];
  readonly maxRunners?: number;
  readonly instanceId?: string;
  /**
   * Adds the runner definition `warm`, labels `self-hosted, linux, x64,
   * flint-demo-warm` (so jobs for it and for `demo` never meet), keeping
   * `minIdle` runners idle and booted.
   */
  readonly warm?: { readonly minIdle: number; readonly maxRunners: number };
}

/** The labels of the `warm` definition; a job runs there with `runs-on: [self-hosted, flint-demo-warm]`. */
export const WARM_LABELS = ['self-hosted', 'linux', 'x64', 'flint-demo-warm'] as const;

export function demoConfig(p: DemoParams): FlintConfig {
  const network = p.network ?? { name: 'br-flint-demo', v4: '10.213.0.1/24', create: true };
  // What every definition of the demo shares: the test image on QEMU, small VMs.
  const runner = {
    kernel: p.kernel,
    ...(p.initrd !== undefined ? { initrd: p.initrd } : {}),
    filesystem: p.filesystem,
    hypervisor: p.hypervisor ?? 'qemu',
    ...(p.jailer !== undefined ? { jailer: p.jailer } : {}),
    ...(p.firecracker !== undefined ? { firecracker: p.firecracker } : {}),
    network: network.name,
    cpuCount: 1,
    memorySize: 512,
    diskSize: '1GiB',
    jobTimeout: '30m',
  };
  const doc = {
    logLevel: 'info',
    address: p.address ?? '127.0.0.1:8089',
    stateDir: p.stateDir,
    runDir: p.runDir ?? `${p.stateDir}/run`,
    instanceId: p.instanceId ?? 'demo',
    networks: [{ name: network.name, v4: network.v4, create: network.create ?? true }],
    github: {
      appID: String(p.appId),
      organization: p.organization ?? 'flint-demo',
      webhookSecret: p.webhookSecret,
      privateKey: p.privateKey,
      apiUrl: p.apiUrl,
    },
    runners: [{
      name: 'demo',
      ...runner,
      labels: [...(p.labels ?? ['self-hosted', 'linux', 'x64', 'flint-demo'])],
      maxRunners: p.maxRunners ?? 2,
    }, ...(p.warm === undefined ? [] : [{
      name: 'warm',
      ...runner,
      labels: [...WARM_LABELS],
      maxRunners: p.warm.maxRunners,
      minIdle: p.warm.minIdle,
    }])],
  };
  const result = parseConfig(stringify(doc), '(demo defaults)', {}, () => {
    throw new Error('the demo configuration reads no files');
  });
  if (!result.ok) {
    throw new FlintError('FLINT_ERR_CONFIG_INVALID', `the demo configuration is not valid:\n${formatProblems(result.problems)}`, { details: { problems: result.problems } });
  }
  return result.config;
}
