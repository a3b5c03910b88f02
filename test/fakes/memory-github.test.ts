import { randomUUID } from 'node:crypto';
import { githubPortContract } from '../contracts/github-port.contract.ts';
import { MemoryGitHub } from './memory-github.ts';

githubPortContract('memory GitHub', async (opts) => {
  const gh = new MemoryGitHub({ repos: opts.repos, runnerGroups: opts.runnerGroups });
  return {
    port: gh,
    org: gh.org,
    queueJob: async (repo, labels) => gh.queueJob(repo, labels),
    takeJob: async (jit, jobId) => gh.takeJob(jit.runnerId, jobId),
    failedEvent: async () => { gh.failDelivery(randomUUID(), 500); },
    close: async () => {},
  };
});
