// The GitHubPort contract (test/contracts/github-port.contract.ts) for the
// real client, against the GitHub simulator.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startSimulator } from '../../../tools/github-sim/index.ts';
import { githubPortContract } from '../../../test/contracts/github-port.contract.ts';
import { createGitHubClient } from './client.ts';

githubPortContract('GitHub client against the simulator', async (opts) => {
  // The webhook receiver: fails the next delivery when told to.
  let failNext = false;
  const receiver = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(failNext ? 500 : 200);
      failNext = false;
      res.end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/webhook`; // listening on TCP: AddressInfo
  const sim = await startSimulator({ repos: opts.repos, runnerGroups: opts.runnerGroups, webhook: { url: hookUrl, secret: 'contract' } });
  const port = createGitHubClient({
    github: { appId: String(sim.appId), organization: sim.org, privateKey: sim.privateKeyPem, apiUrl: sim.apiUrl },
    retryBaseMs: 10,
  });
  const control = async (path: string, body: unknown): Promise<Record<string, unknown>> => {
    const res = await fetch(`${sim.apiUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    assert.equal(res.status, 200, `${path}: ${await res.clone().text()}`);
    return await res.json() as Record<string, unknown>; // the control API answers JSON objects
  };
  return {
    port,
    org: sim.org,
    queueJob: async (repo, labels) => (await sim.queueJob({ repo, labels: [...labels] })).jobId,
    takeJob: async (jit, jobId) => {
      const { session } = await control('/_sim/runner/connect', { jitconfig: jit.encodedJitConfig });
      const got = await control('/_sim/runner/acquire', { session });
      assert.equal(got.job_id, jobId);
    },
    failedEvent: async () => {
      failNext = true;
      await sim.queueJob({ repo: opts.repos[0] ?? 'app', labels: ['contract-webhook'] });
      await sim.settled();
    },
    close: async () => {
      await sim.close();
      await new Promise<void>((resolve) => {
        receiver.close(() => resolve());
        receiver.closeAllConnections();
      });
    },
  };
});
