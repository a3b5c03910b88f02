import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from './load.ts';
import { formatProblem } from './problems.ts';
import type { FlintConfig } from './types.ts';
import { summarizeConfig } from './summary.ts';

const noFiles = (path: string): string => {
  throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
};
const runner = (name: string, extra = ''): string => `  - name: ${name}
    labels: [self-hosted, linux]
    kernel: /srv/flint/vmlinux
    filesystem: /srv/flint/rootfs.ext4
    hypervisor: qemu
    group: Builders
${extra}`;
const file = (o: { top?: string; secret?: boolean; runners: string[] }): string => `${o.top ?? ''}networks:
  - name: br-flint
    v4: 10.0.0.1/24
github:
  appID: 1234
  organization: acme
${o.secret === true ? '  webhookSecret: s3cret-webhook\n' : ''}  privateKey: inline-key
runners:
${o.runners.join('')}`;
const parse = (text: string) => parseConfig(text, '/etc/flint/config.yaml', {}, noFiles);
function ok(text: string): FlintConfig {
  const r = parse(text);
  if (!r.ok) assert.fail(r.problems.map(formatProblem).join('\n'));
  return r.config;
}

test('every definition in scale-set mode: no webhook secret is needed and none is accepted', () => {
  const c = ok(file({ top: 'mode: scaleset\n', runners: [runner('small'), runner('big', '    scaleSet: {name: flint-big, runnerGroup: Other}\n')] }));
  assert.deepEqual(c.github.webhookSecrets, []);
  assert.deepEqual(c.runners.map((r) => r.scaleSet), [{ name: 'small', runnerGroup: 'Builders' }, { name: 'flint-big', runnerGroup: 'Other' }]);
  const summary = summarizeConfig(c).join('\n');
  assert.match(summary, /no webhook secret: every runner definition listens to a scale set/);
  assert.match(summary, /big .*scale set flint-big \(runner group Other\)/);
});

test('scaleSet: alone puts a definition in scale-set mode; mode: webhook overrides the top-level default', () => {
  const c = ok(file({ top: 'mode: scaleset\n', secret: true, runners: [runner('a', '    mode: webhook\n'), runner('b', '    scaleSet: {}\n')] }));
  assert.equal(c.runners[0]?.scaleSet, undefined);
  assert.deepEqual(c.runners[1]?.scaleSet, { name: 'b', runnerGroup: 'Builders' });
  assert.deepEqual(c.github.webhookSecrets, ['s3cret-webhook']);
});

test('a definition in webhook mode without a webhook secret is a missing key that names it', () => {
  const r = parse(file({ runners: [runner('a', '    mode: scaleset\n'), runner('hooked')] }));
  assert.equal(r.ok, false);
  const p = r.ok ? undefined : r.problems.find((x) => x.code === 'FLINT_ERR_CONFIG_MISSING_KEY');
  assert.match(p?.message ?? '', /webhookSecret.*hooked/);
  assert.match(p?.hint ?? '', /mode: scaleset/);
});

test('scaleSet: beside mode: webhook is a conflict; an unknown key under scaleSet is named', () => {
  const r = parse(file({ secret: true, runners: [runner('a', '    mode: webhook\n    scaleSet: {name: x}\n')] }));
  assert.equal(r.ok, false);
  assert.ok(!r.ok && r.problems.some((p) => p.code === 'FLINT_ERR_CONFIG_CONFLICT' && p.path === 'runners[0].scaleSet'), r.ok ? '' : r.problems.map(formatProblem).join('\n'));
  const u = parse(file({ secret: true, runners: [runner('a', '    scaleSet: {nmae: x}\n')] }));
  assert.ok(!u.ok && u.problems.some((p) => p.code === 'FLINT_ERR_CONFIG_UNKNOWN_KEY' && /name/.test(p.hint)), u.ok ? '' : u.problems.map(formatProblem).join('\n'));
  const m = parse(file({ secret: true, runners: [runner('a', '    mode: scalesets\n')] }));
  assert.equal(m.ok, false);
});
