// The GitHubPort contract (test/contracts/github-port.contract.ts) for the
// real client, against the GitHub simulator.
import assert from 'node:assert/strict';
import { startSimulator } from '../../../tools/github-sim/index.ts';
import { githubPortContract } from '../../../test/contracts/github-port.contract.ts';
import { createGitHubClient } from './client.ts';

githubPortContract('GitHub client against the simulator', async (opts) => {
  const sim = await startSimulator({ repos: opts.repos, runnerGroups: opts.runnerGroups });
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
    close: () => sim.close(),
  };
});
