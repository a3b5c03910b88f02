import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { startReceiver } from './receiver.ts';

const main = fileURLToPath(new URL('./main.ts', import.meta.url));

test('the CLI prints its API URL, App id and key file, serves the control API, and cleans up on SIGTERM', async (t) => {
  const rcv = await startReceiver();
  t.after(() => rcv.close());
  const child = spawn(process.execPath, ['--import', 'tsx', main, '--port', '0', '--org', 'octo', '--repo', 'one', '--webhook-url', rcv.url, '--webhook-secret', 'cli'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.after(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
  const info: Record<string, string> = {};
  const lines = createInterface({ input: child.stdout });
  for await (const line of lines) {
    const m = /^(\w+)=(.*)$/.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined) info[m[1]] = m[2];
    if (info.private_key_file !== undefined) break;
  }
  assert.match(info.api_url ?? '', /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(info.app_id, '4242');
  assert.equal(info.org, 'octo');
  const keyFile = info.private_key_file ?? '';
  assert.match(readFileSync(keyFile, 'utf8'), /BEGIN RSA PRIVATE KEY/);
  assert.equal(statSync(keyFile).mode & 0o777, 0o600);
  const queued = await fetch(`${info.api_url}/_sim/jobs`, { method: 'POST', body: JSON.stringify({ repo: 'one', labels: ['flint'] }) });
  assert.equal(queued.status, 201);
  assert.equal((await rcv.waitFor(1))[0]?.headers['x-github-event'], 'workflow_job');
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
  assert.equal(existsSync(keyFile), false, 'the temp key directory is removed');
});

test('the CLI refuses a webhook URL without a secret', async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', main, '--webhook-url', 'http://127.0.0.1:1/x'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (c: Buffer) => { err += c.toString(); });
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  assert.equal(code, 2);
  assert.match(err, /--webhook-url and --webhook-secret go together/);
});
