/**
 * Realistic `workflow_job` deliveries, shaped like GitHub's (typed against
 * the published webhook schema, and validated against its JSON schema in
 * src/entrypoints/http/server.test.ts), for the intake tests and the
 * webhook-intake benchmark. About 6 KB each, as GitHub's are.
 */
import { randomUUID } from 'node:crypto';
import type { JobAction, WorkflowJobPayload } from '../src/core/jobs.ts';
import { signatureHeader } from '../src/daemon/intake/verify-signature.ts';

export interface PayloadOptions {
  readonly jobId: number;
  readonly action: JobAction;
  readonly labels?: readonly string[];
  readonly runnerName?: string;
  readonly org?: string;
  readonly repo?: string;
}

function user(login: string, id: number, type: string) {
  const u = `https://api.github.com/users/${login}`;
  return {
    login, id, node_id: `MDQ6VXNlcj${id}`, avatar_url: `https://avatars.githubusercontent.com/u/${id}?v=4`, gravatar_id: '',
    url: u, html_url: `https://github.com/${login}`, followers_url: `${u}/followers`, following_url: `${u}/following{/other_user}`,
    gists_url: `${u}/gists{/gist_id}`, starred_url: `${u}/starred{/owner}{/repo}`, subscriptions_url: `${u}/subscriptions`,
    organizations_url: `${u}/orgs`, repos_url: `${u}/repos`, events_url: `${u}/events{/privacy}`,
    received_events_url: `${u}/received_events`, type, site_admin: false,
  };
}

function repository(org: string, name: string) {
  const full = `${org}/${name}`;
  const a = `https://api.github.com/repos/${full}`;
  return {
    id: 123456789, node_id: 'R_kgDOHb2Xyw', name, full_name: full, private: true, owner: user(org, 9919, 'Organization'),
    html_url: `https://github.com/${full}`, description: 'Widgets for everyone', fork: false, url: a,
    forks_url: `${a}/forks`, keys_url: `${a}/keys{/key_id}`, collaborators_url: `${a}/collaborators{/collaborator}`,
    teams_url: `${a}/teams`, hooks_url: `${a}/hooks`, issue_events_url: `${a}/issues/events{/number}`, events_url: `${a}/events`,
    assignees_url: `${a}/assignees{/user}`, branches_url: `${a}/branches{/branch}`, tags_url: `${a}/tags`,
    blobs_url: `${a}/git/blobs{/sha}`, git_tags_url: `${a}/git/tags{/sha}`, git_refs_url: `${a}/git/refs{/sha}`,
    trees_url: `${a}/git/trees{/sha}`, statuses_url: `${a}/statuses/{sha}`, languages_url: `${a}/languages`,
    stargazers_url: `${a}/stargazers`, contributors_url: `${a}/contributors`, subscribers_url: `${a}/subscribers`,
    subscription_url: `${a}/subscription`, commits_url: `${a}/commits{/sha}`, git_commits_url: `${a}/git/commits{/sha}`,
    comments_url: `${a}/comments{/number}`, issue_comment_url: `${a}/issues/comments{/number}`,
    contents_url: `${a}/contents/{+path}`, compare_url: `${a}/compare/{base}...{head}`, merges_url: `${a}/merges`,
    archive_url: `${a}/{archive_format}{/ref}`, downloads_url: `${a}/downloads`, issues_url: `${a}/issues{/number}`,
    pulls_url: `${a}/pulls{/number}`, milestones_url: `${a}/milestones{/number}`,
    notifications_url: `${a}/notifications{?since,all,participating}`, labels_url: `${a}/labels{/name}`,
    releases_url: `${a}/releases{/id}`, deployments_url: `${a}/deployments`, created_at: '2024-03-01T10:00:00Z',
    updated_at: '2026-11-20T08:12:44Z', pushed_at: '2026-11-25T18:02:11Z', git_url: `git://github.com/${full}.git`,
    ssh_url: `git@github.com:${full}.git`, clone_url: `https://github.com/${full}.git`, svn_url: `https://github.com/${full}`,
    homepage: null, size: 4821, stargazers_count: 12, watchers_count: 12, language: 'TypeScript', has_issues: true,
    has_projects: false, has_downloads: true, has_wiki: false, has_pages: false, has_discussions: false, forks_count: 1,
    mirror_url: null, archived: false, disabled: false, open_issues_count: 3, license: null, allow_forking: false,
    is_template: false, web_commit_signoff_required: false, topics: [], visibility: 'private', forks: 1, open_issues: 3,
    watchers: 12, default_branch: 'main', custom_properties: {},
  };
}

/** A workflow_job payload for `action`, typed by GitHub's schema. */
export function workflowJobPayload(o: PayloadOptions): WorkflowJobPayload {
  const org = o.org ?? 'acme';
  const repo = o.repo ?? 'widgets';
  const runId = 9_000_000_000 + Math.floor(o.jobId / 4);
  const started = o.action === 'queued' || o.action === 'waiting' ? '2026-11-25T18:02:15Z' : '2026-11-25T18:02:31Z';
  const running = o.action === 'in_progress' || o.action === 'completed';
  const jobUrl = `https://api.github.com/repos/${org}/${repo}/actions/jobs/${o.jobId}`;
  const steps = o.action === 'completed'
    ? ['Set up job', 'Checkout', 'Install', 'Test', 'Post Checkout', 'Complete job'].map((name, i) => ({
      name, status: 'completed' as const, conclusion: 'success' as const, number: i + 1,
      started_at: '2026-11-25T18:02:31Z', completed_at: '2026-11-25T18:03:40Z',
    }))
    : [];
  const workflowJob = {
    id: o.jobId, run_id: runId, workflow_name: 'CI', head_branch: 'main',
    run_url: `https://api.github.com/repos/${org}/${repo}/actions/runs/${runId}`, run_attempt: 1, node_id: `CR_kwDOHb2Xy88AAAA${o.jobId}`,
    head_sha: 'f1e2d3c4b5a697887766554433221100ffeeddcc', url: jobUrl,
    html_url: `https://github.com/${org}/${repo}/actions/runs/${runId}/job/${o.jobId}`,
    status: o.action, created_at: '2026-11-25T18:02:14Z', started_at: started,
    completed_at: o.action === 'completed' ? '2026-11-25T18:03:41Z' : null,
    name: 'test (node 22)', steps, check_run_url: `https://api.github.com/repos/${org}/${repo}/check-runs/${o.jobId}`,
    labels: [...(o.labels ?? ['self-hosted', 'linux', 'x64'])],
    runner_id: running ? 42 : null, runner_name: running ? (o.runnerName ?? 'flint-h7k2-00001') : null,
    runner_group_id: running ? 1 : null, runner_group_name: running ? 'Default' : null,
  };
  const common = {
    repository: repository(org, repo), sender: user('octocat', 583231, 'User'),
    organization: {
      login: org, id: 9919, node_id: 'MDEyOk9yZ2FuaXphdGlvbjk5MTk=', url: `https://api.github.com/orgs/${org}`,
      repos_url: `https://api.github.com/orgs/${org}/repos`, events_url: `https://api.github.com/orgs/${org}/events`,
      hooks_url: `https://api.github.com/orgs/${org}/hooks`, issues_url: `https://api.github.com/orgs/${org}/issues`,
      members_url: `https://api.github.com/orgs/${org}/members{/member}`,
      public_members_url: `https://api.github.com/orgs/${org}/public_members{/member}`,
      avatar_url: 'https://avatars.githubusercontent.com/u/9919?v=4', description: 'We make widgets',
    },
    installation: { id: 31337, node_id: 'MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMzEzMzc=' },
  };
  switch (o.action) {
    case 'queued': return { action: 'queued', ...common, workflow_job: { ...workflowJob, status: 'queued', conclusion: null } };
    case 'waiting': return { action: 'waiting', ...common, workflow_job: { ...workflowJob, status: 'waiting', conclusion: null } };
    case 'in_progress': return { action: 'in_progress', ...common, workflow_job: { ...workflowJob, status: 'in_progress', conclusion: null } };
    case 'completed': return {
      action: 'completed', ...common,
      workflow_job: {
        ...workflowJob, status: 'completed', conclusion: 'success', completed_at: '2026-11-25T18:03:41Z',
        // The generated TS type turns the JSON schema's `steps.items: {type: object}`
        // of this variant into Record<string, never>; the JSON schema itself
        // (which the tests validate against) accepts real step objects.
        steps: steps as never[],
      },
    };
  }
}

export interface SignedDelivery {
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** Headers and body of a signed delivery, as GitHub's hookshot sends them. */
export function signedDelivery(secret: string, event: string, payload: unknown, deliveryId: string = randomUUID()): SignedDelivery {
  return signedBody(secret, event, JSON.stringify(payload), deliveryId);
}

/** The same, for a body already serialized. */
export function signedBody(secret: string, event: string, body: string, deliveryId: string = randomUUID()): SignedDelivery {
  return {
    body,
    headers: {
      'content-type': 'application/json',
      'user-agent': 'GitHub-Hookshot/0f1e2d3',
      'x-github-event': event,
      'x-github-delivery': deliveryId,
      'x-github-hook-id': '471100',
      'x-github-hook-installation-target-type': 'integration',
      'x-github-hook-installation-target-id': '31337',
      'x-hub-signature-256': signatureHeader(secret, body),
    },
  };
}
