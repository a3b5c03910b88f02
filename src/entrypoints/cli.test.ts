/**
 * The command line's bad input: an unknown option, a missing value or a
 * stray argument of any command is a usage error — exit 2, the error, then
 * that command's usage — never FLINT_ERR_INTERNAL. Nothing here gets far
 * enough to open a database, load a driver or touch the network.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { commands, main } from './cli.ts';
import type { CommandIo } from './io.ts';

function io(): { io: CommandIo; out: () => string; err: () => string } {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s) }, env: {} },
    out: () => out.join(''),
    err: () => err.join(''),
  };
}

async function expectUsageError(argv: string[], words: readonly string[]): Promise<void> {
  const s = io();
  const code = await main(argv, s.io);
  const what = `flint ${argv.join(' ')}`;
  assert.equal(code, 2, `${what}: exit 2\n${s.err()}`);
  assert.doesNotMatch(s.err(), /FLINT_ERR_INTERNAL|This is a bug/, what);
  assert.match(s.err(), /FLINT_ERR_USAGE/, what);
  assert.ok(s.err().includes(`Usage: flint ${words.join(' ')}`), `${what}: prints the command's usage\n${s.err()}`);
}

for (const command of commands) {
  test(`flint ${command.words.join(' ')} with an unknown option is a usage error with its usage`, async () => {
    await expectUsageError([...command.words, '--no-such-option'], command.words);
    await expectUsageError([...command.words, '--no-such-option=1'], command.words);
  });

  test(`flint ${command.words.join(' ')} --help prints its usage and exits 0`, async () => {
    const s = io();
    assert.equal(await main([...command.words, '--help'], s.io), 0);
    assert.ok(s.out().includes(`Usage: flint ${command.words.join(' ')}`), s.out());
  });
}

test('flint demo --json (an option it does not have) is a usage error, not an internal one', async () => {
  await expectUsageError(['demo', '--json'], ['demo']);
});

test('options without their value and stray arguments are usage errors', async () => {
  for (const [argv, words] of [
    [['demo', '--jobs'], ['demo']],
    [['demo', 'extra'], ['demo']],
    [['app', 'create', 'extra'], ['app', 'create']],
    [['app', 'create', '--org'], ['app', 'create']],
    [['app', 'create', '--config', '/nonexistent/flint.yaml', '--org', 'acme', '--webhook-url', 'https://f.example/webhook', '--listen', '0.0.0.0:8917'], ['app', 'create']],
    [['app', 'create', '--config', '/nonexistent/flint.yaml', '--org', 'acme'], ['app', 'create']],
    [['image', 'build', 'kernel', '--arch'], ['image', 'build']],
    [['image', 'build', 'kernel', '--debug=yes'], ['image', 'build']],
    [['image', 'build', 'kernel', 'rootfs'], ['image', 'build']],
    [['serve', '--config'], ['serve']],
    [['serve', 'extra'], ['serve']],
    [['run', '--config'], ['run']],
    [['run', 'a', 'b'], ['run']],
    [['config', 'check', 'a.yaml', 'b.yaml'], ['config', 'check']],
    [['config', 'check', '--config'], ['config', 'check']],
    [['doctor', '--config'], ['doctor']],
    [['doctor', 'extra'], ['doctor']],
    [['service', 'install', '--unit-dir'], ['service', 'install']],
    [['service', 'install', '--config='], ['service', 'install']],
    [['service', 'install', 'extra'], ['service', 'install']],
    [['status', 'extra'], ['status']],
    [['vms', '--socket'], ['vms']],
    [['jobs', '--since', 'soon'], ['jobs']],
    [['jobs', '--since'], ['jobs']],
    [['logs'], ['logs']],
    [['logs', 'a', 'b'], ['logs']],
    [['drain'], ['drain']],
    [['drain', 'demo', '--host'], ['drain']],
    [['resume', 'a', 'b'], ['resume']],
  ] as const) {
    await expectUsageError([...argv], words);
  }
});

test('an unknown command says so and prints the list of commands', async () => {
  const s = io();
  assert.equal(await main(['frobnicate'], s.io), 2);
  assert.match(s.err(), /unknown command "frobnicate"/);
  assert.match(s.err(), /Usage: flint <command>/);
});

test('output into a pipe its reader closed early (flint --help | head -1) ends quietly with 141 (as after SIGPIPE), not with an EPIPE stack trace', async () => {
  const { spawn } = await import('node:child_process');
  const launcher = new URL('../../bin/flint.mjs', import.meta.url).pathname;
  // The reader closes stdout at once, so the help text's write meets EPIPE.
  const child = spawn(process.execPath, [launcher, '--help'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FLINT_FROM_SOURCE: '1' } });
  child.stdout.destroy();
  let err = '';
  child.stderr.on('data', (b: Buffer) => { err += b.toString(); });
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  assert.doesNotMatch(err, /EPIPE|Unhandled 'error' event/, err);
  assert.equal(code, 141, err);
});
