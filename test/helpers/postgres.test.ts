/**
 * The throw-away PostgreSQL cluster outlives no test process: one killed
 * outright (SIGKILL: no after-hook runs) has its cluster stopped and its
 * directory removed by the helper's watchdog.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { postgresPrereqs } from './postgres.ts';
import { requirePrereqs } from './prereq.ts';

/** Alive and not a zombie waiting for a parent's wait (a zombie holds no socket, file or memory). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The state follows the command name in parentheses, which may itself hold ") ".
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

test('a test process killed with SIGKILL leaves no PostgreSQL behind: the watchdog stops the server and removes its directory', { timeout: 120_000 }, async (t) => {
  if (!requirePrereqs(t, ...postgresPrereqs())) return;
  const helper = pathToFileURL(new URL('./postgres.ts', import.meta.url).pathname).href;
  const code = `import { startPostgres } from ${JSON.stringify(helper)};
const c = await startPostgres();
console.log(JSON.stringify({ dir: c.socketDir, pid: c.pid }));
setInterval(() => undefined, 60_000);`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  let cluster: { dir: string; pid: number } | undefined;
  // Whatever happens below, nothing of it stays: the child, then (if the watchdog failed) the server and its files.
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    if (cluster === undefined) return;
    if (running(cluster.pid)) process.kill(cluster.pid, 'SIGQUIT');
    rmSync(cluster.dir, { recursive: true, force: true });
  });
  const lines = createInterface({ input: child.stdout });
  for await (const line of lines) {
    cluster = JSON.parse(line) as { dir: string; pid: number }; // the one line the child prints
    break;
  }
  assert.ok(cluster !== undefined, 'the child started a cluster');
  assert.ok(running(cluster.pid) && existsSync(cluster.dir), 'the cluster runs');

  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
  // pg_ctl's immediate stop and a directory removal: well within seconds even on a loaded machine.
  const deadline = Date.now() + 30_000;
  while (running(cluster.pid) || existsSync(cluster.dir)) {
    if (Date.now() > deadline) assert.fail(`the cluster outlived its test process: server ${running(cluster.pid) ? 'running' : 'gone'}, ${cluster.dir} ${existsSync(cluster.dir) ? 'still there' : 'removed'}`);
    await new Promise((r) => setTimeout(r, 100));
  }
});
