/**
 * The embedded configuration of `flint demo`: one network, one QEMU runner,
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
}

export function demoConfig(p: DemoParams): FlintConfig {
  const network = p.network ?? { name: 'br-flint-demo', v4: '10.213.0.1/24', create: true };
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
      labels: [...(p.labels ?? ['self-hosted', 'linux', 'x64', 'flint-demo'])],
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
      maxRunners: p.maxRunners ?? 2,
      jobTimeout: '30m',
    }],
  };
  const result = parseConfig(stringify(doc), '(demo defaults)', {}, () => {
    throw new Error('the demo configuration reads no files');
  });
  if (!result.ok) {
    throw new FlintError('FLINT_ERR_CONFIG_INVALID', `the demo configuration is not valid:\n${formatProblems(result.problems)}`, { details: { problems: result.problems } });
  }
  return result.config;
}
