/**
 * A short human summary of a resolved configuration, for `flint config
 * check` and the first lines `flint serve` prints. Invariant: it names
 * secrets (where they come from) but never shows them.
 */
import { describeListening } from './listen-plan.ts';
import type { FlintConfig } from './types.ts';
import { withoutPassword } from '../core/url-password.ts';
import { FLEET_DEFAULTS } from '../daemon/fleet.ts';

function bytes(n: number): string {
  for (const [unit, size] of [['TiB', 2 ** 40], ['GiB', 2 ** 30], ['MiB', 2 ** 20]] as const) {
    if (n >= size && n % size === 0) return `${n / size} ${unit}`;
  }
  return `${n} bytes`;
}

function duration(s: number): string {
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return [h ? `${h}h` : '', m ? `${m}m` : '', sec ? `${sec}s` : ''].join('') || '0s';
}

export function summarizeConfig(c: FlintConfig): string[] {
  const gh = c.github;
  const lines = [
    `instance ${c.instanceId}, state in ${c.stateDir}, log level ${c.logLevel}`,
    `listen ${c.address} (${describeListening(c)})`,
    ...(c.store?.postgres === undefined ? [] : [
      `store: PostgreSQL at ${withoutPassword(c.store.postgres.url)}${c.store.postgres.password === undefined ? '' : ' (password given apart)'}; address leases in ${c.stateDir}`,
      `fleet: heartbeat every ${duration(c.fleet?.heartbeatSeconds ?? FLEET_DEFAULTS.heartbeatMs / 1000)}, leader lease ${duration(c.fleet?.leaseTtlSeconds ?? FLEET_DEFAULTS.leaseTtlMs / 1000)}, ` +
        `claims on queued jobs ${duration(c.fleet?.claimTtlSeconds ?? FLEET_DEFAULTS.claimTtlMs / 1000)}, ` +
        `a silent host lost after ${duration(c.fleet?.hostLostSeconds ?? FLEET_DEFAULTS.hostLostMs / 1000)}`]),
    ...(c.status === undefined ? [] : [`status page on http://${c.status.address}/ (${c.status.token === undefined ? 'no token: loopback only' : 'token required'})`]),
    `GitHub: organization ${gh.organization}, App ${gh.appId}, API ${gh.apiUrl}`,
    `  private key ${gh.privateKeyFile !== undefined ? `from ${gh.privateKeyFile}` : 'inline'}; ${gh.webhookSecrets.length === 0 ? 'no webhook secret: every runner definition listens to a scale set' : `${gh.webhookSecrets.length} webhook secret(s) accepted`}`,
    `networks (${c.networks.length}):`,
    ...c.networks.map((n) => `  ${n.name}  ${n.v4.address}/${n.v4.prefixLength}${n.range ? ` range ${n.range.first}-${n.range.last}` : ''}` +
      `${n.v6 ? `  ${n.v6.address}/${n.v6.prefixLength}${n.range6 ? ` range ${n.range6.first}-${n.range6.last}` : ''}` : ''}  dns ${n.dns.join(',')}${n.create ? '  (created if missing)' : ''}`),
    `runners (${c.runners.length}):`,
    ...c.runners.map((r) =>
      `  ${r.name}${r.static ? ' (static)' : ''}  labels [${r.labels.join(', ')}]  group ${r.group}  ${r.hypervisor} on ${r.network}  ` +
      `${r.cpuCount} vCPU${r.smt ? ' smt' : ''}, ${bytes(r.memorySize * 2 ** 20)} RAM, ${bytes(r.diskSize)} disk  ` +
      `max ${r.maxRunners}, warm ${r.minIdle}, timeout ${duration(r.jobTimeoutSeconds)}` +
      `${r.scaleSet === undefined ? '' : `  scale set ${r.scaleSet.name} (runner group ${r.scaleSet.runnerGroup})`}`),
  ];
  return lines;
}
