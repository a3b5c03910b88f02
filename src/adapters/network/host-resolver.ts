/**
 * Resolves the host names of egress allow-lists. The narrow port lets tests
 * give a fixed table of names (a first-class implementation, not a stub);
 * the real one asks the host's resolver (/etc/hosts, then DNS), as every
 * other program on the host would.
 */
import { lookup } from 'node:dns/promises';

export interface HostResolver {
  /** The IPv4 and IPv6 addresses of `name`; rejects when the name does not resolve. */
  lookup(name: string): Promise<string[]>;
}

export function systemHostResolver(): HostResolver {
  return {
    async lookup(name) {
      return (await lookup(name, { all: true, verbatim: true })).map((a) => a.address);
    },
  };
}

/** A resolver that knows only the names it was given (tests, and hosts that must not ask DNS). */
export function fixedHostResolver(table: ReadonlyMap<string, readonly string[]>): HostResolver {
  return {
    lookup(name) {
      const found = table.get(name);
      // ENOTFOUND, as node:dns says it.
      if (found === undefined) return Promise.reject(Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: 'ENOTFOUND' }));
      return Promise.resolve([...found]);
    },
  };
}
