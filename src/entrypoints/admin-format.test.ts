import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildStatus } from '../daemon/status.ts';
import { fleetInputs, statusInputs as inputs, T } from '../../test/fixtures/status-inputs.ts';
import { age, consoleJsonLines, formatFleet, formatStatus, table } from './admin-format.ts';

test('ages read like 850ms, 45s, 3m12s, 2h05m, 3d04h; tables align their columns', () => {
  assert.deepEqual([850, 45_000, 192_000, 7_500_000, 273_600_000, null].map(age), ['850ms', '45s', '3m12s', '2h05m', '3d04h', '-']);
  assert.equal(table(['A', 'LONGER'], [['xxxx', 'y'], ['z', '']]), 'A     LONGER\nxxxx  y\nz\n');
  const out = formatStatus(buildStatus(inputs()));
  assert.match(out, /^Flint ab: running; free for VMs 12\/16 vCPUs, 21808\/30000 MiB$/m);
  assert.match(out, /^big +backing-off +0 +0 +0 +0 +0\/2 +backing-off \(2 failed, FLINT_ERR_VM_BOOT_TIMEOUT, retry in 25s\)$/m);
  assert.match(out, /^ab-00001 +small +running +busy +3m20s +10\.0\.0\.2 +2s +acme\/widgets #11 build 11$/m);
});

test('the Fleet table: one row per host with state, role, capacity, VMs and heartbeat age; claims only when wired; SQLite says there is no fleet', () => {
  const out = formatStatus(buildStatus(inputs({ fleet: fleetInputs() })));
  assert.match(out, /^Fleet \(4 hosts\)$/m);
  assert.match(out, /^HOST +STATE +ROLE +VCPUS +MEMORY +VMS +HEARTBEAT +ADDRESS$/m);
  assert.match(out, /^ab +up +leader, this host +16 +30000 MiB +2 +1s ago +http:\/\/ab\.internal:8080$/m);
  assert.match(out, /^cd +late +- +16 +30000 MiB +2 +25s ago +http:\/\/cd\.internal:8080$/m);
  assert.match(out, /^ef +lost +- +16 +30000 MiB +0 +1m35s ago /m);
  assert.match(out, /^gh +lost \(declared 5s ago\) +- /m);
  assert.doesNotMatch(formatStatus(buildStatus(inputs())), /Fleet/);
  const claimed = formatFleet(buildStatus(inputs({ fleet: fleetInputs({ claims: new Map([['cd', 3]]) }) })).fleet);
  assert.match(claimed, /^HOST +STATE +ROLE +VCPUS +MEMORY +VMS +CLAIMS +HEARTBEAT +ADDRESS$/m);
  assert.match(claimed, /^cd +late +- +16 +30000 MiB +2 +3 +25s ago /m);
  const leaderless = formatFleet(buildStatus(inputs({ fleet: fleetInputs({ lease: { name: 'singletons', holder: 'ab', expiresAt: T - 1 } }) })).fleet);
  assert.match(leaderless, /^ab +up +this host /m);
  assert.match(leaderless, /^no leader now/m);
  assert.equal(formatFleet(null), 'no fleet: the store is SQLite, this host is the whole fleet\n');
  // Hosts that publish their room per definition: a ROOM column, `-` for one that publishes none.
  const byId = (id: string) => fleetInputs().hosts.find((h) => h.id === id)!;
  const roomy = formatFleet(buildStatus(inputs({ fleet: fleetInputs({ hosts: [{ ...byId('ab'), canHold: { small: 3, large: 0 } }, byId('cd')] }) })).fleet);
  assert.match(roomy, /^HOST +STATE +ROLE +VCPUS +MEMORY +VMS +ROOM +HEARTBEAT +ADDRESS$/m);
  assert.match(roomy, /^ab +up +leader, this host +16 +30000 MiB +2 +large=0,small=3 +1s ago /m);
  assert.match(roomy, /^cd +late +- +16 +30000 MiB +2 +- +25s ago /m);
});

test('console bytes become one JSON line per console line: split chunks, a split UTF-8 character, CRLF and an unfinished last line', () => {
  const lines = consoleJsonLines('ab-0000f');
  const text = Buffer.from('FLINT-MARKER booted\r\nhalf a li', 'utf8');
  const euro = Buffer.from('ne \u20ac\nlast, no newline', 'utf8');
  const cut = euro.indexOf(0xe2) + 1; // inside the three bytes of the euro sign
  const out = [lines.push(text), lines.push(euro.subarray(0, cut)), lines.push(euro.subarray(cut)), lines.end()].join('');
  assert.deepEqual(out.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as unknown), [
    { vm: 'ab-0000f', line: 'FLINT-MARKER booted' },
    { vm: 'ab-0000f', line: 'half a line \u20ac' },
    { vm: 'ab-0000f', line: 'last, no newline' },
  ]);
  assert.equal(consoleJsonLines('ab-0000f').end(), '', 'an empty log is no line');
  // Blank console lines are lines too; quotes and control characters stay inside the JSON.
  assert.equal(consoleJsonLines('x').push(Buffer.from('\n"q"\t\n')), '{"vm":"x","line":""}\n{"vm":"x","line":"\\"q\\"\\t"}\n');
});
