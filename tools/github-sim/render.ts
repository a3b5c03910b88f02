/**
 * The simulator's objects rendered as GitHub's JSON. Field sets follow the
 * `@octokit/openapi` (REST) and `@octokit/openapi-webhooks` schemas; the
 * contract test validates every rendering against them.
 */
import type { JobConclusion, JobStatus } from './types.ts';

export interface RenderCtx {
  /** REST base URL (what Octokit calls `baseUrl`). */
  readonly api: string;
  /** Web base URL (`html_url`s). The simulator serves both from one origin. */
  readonly web: string;
  readonly org: string;
  readonly orgId: number;
  readonly appId: number;
  readonly appSlug: string;
  readonly installationId: number;
  /** When the simulated world was created: timestamps of static objects. */
  readonly createdAt: string;
}

export interface RepoRec { readonly id: number; readonly name: string }
export interface RunRec {
  readonly id: number; readonly repo: RepoRec; readonly runNumber: number; readonly headSha: string;
  readonly createdAt: string; updatedAt: string;
}
export interface JobRec {
  readonly id: number; readonly run: RunRec; readonly name: string; readonly labels: readonly string[];
  readonly group: string | undefined;
  status: JobStatus; conclusion: JobConclusion | null;
  runner: { readonly id: number; readonly name: string; readonly groupId: number; readonly groupName: string } | null;
  readonly createdAt: string; startedAt: string; completedAt: string | null;
  /** The scale set that acquired the job (actions-service.ts); only that scale set's runners may take it. */
  acquiredBy: number | null;
}
export interface RunnerRec {
  readonly id: number; readonly name: string;
  readonly defaultLabels: readonly string[]; readonly customLabels: readonly string[];
  readonly groupId: number; readonly groupName: string; readonly repo: RepoRec | undefined;
  status: 'online' | 'offline'; busy: boolean; connected: boolean; jobId: number | null;
  readonly session: string; readonly workFolder: string;
  /** The scale set the runner was generated for; null for a runner of the REST JIT endpoint. */
  readonly scaleSetId: number | null;
}
export interface GroupRec { readonly id: number; readonly name: string; readonly isDefault: boolean }

const nodeId = (kind: string, id: number): string => Buffer.from(`0:${kind}${id}`).toString('base64').replace(/=+$/, '');

export function account(c: RenderCtx): Record<string, unknown> {
  const u = `${c.api}/users/${c.org}`;
  return {
    login: c.org, id: c.orgId, node_id: nodeId('Organization', c.orgId),
    avatar_url: `${c.web}/avatars/u/${c.orgId}?v=4`, gravatar_id: '', url: u, html_url: `${c.web}/${c.org}`,
    followers_url: `${u}/followers`, following_url: `${u}/following{/other_user}`, gists_url: `${u}/gists{/gist_id}`,
    starred_url: `${u}/starred{/owner}{/repo}`, subscriptions_url: `${u}/subscriptions`, organizations_url: `${u}/orgs`,
    repos_url: `${u}/repos`, events_url: `${u}/events{/privacy}`, received_events_url: `${u}/received_events`,
    type: 'Organization', user_view_type: 'public', site_admin: false,
  };
}

export function organizationWebhook(c: RenderCtx): Record<string, unknown> {
  const u = `${c.api}/orgs/${c.org}`;
  return {
    login: c.org, id: c.orgId, node_id: nodeId('Organization', c.orgId), url: u, repos_url: `${u}/repos`,
    events_url: `${u}/events`, hooks_url: `${u}/hooks`, issues_url: `${u}/issues`, members_url: `${u}/members{/member}`,
    public_members_url: `${u}/public_members{/member}`, avatar_url: `${c.web}/avatars/u/${c.orgId}?v=4`, description: null,
  };
}

/** Fields shared by `minimal-repository`, `repository` and the webhooks' `repository`. */
function repoUrls(c: RenderCtx, r: RepoRec): Record<string, unknown> {
  const full = `${c.org}/${r.name}`;
  const u = `${c.api}/repos/${full}`;
  return {
    id: r.id, node_id: nodeId('Repository', r.id), name: r.name, full_name: full, private: true,
    owner: account(c), html_url: `${c.web}/${full}`, description: null, fork: false, url: u,
    archive_url: `${u}/{archive_format}{/ref}`, assignees_url: `${u}/assignees{/user}`, blobs_url: `${u}/git/blobs{/sha}`,
    branches_url: `${u}/branches{/branch}`, collaborators_url: `${u}/collaborators{/collaborator}`,
    comments_url: `${u}/comments{/number}`, commits_url: `${u}/commits{/sha}`, compare_url: `${u}/compare/{base}...{head}`,
    contents_url: `${u}/contents/{+path}`, contributors_url: `${u}/contributors`, deployments_url: `${u}/deployments`,
    downloads_url: `${u}/downloads`, events_url: `${u}/events`, forks_url: `${u}/forks`,
    git_commits_url: `${u}/git/commits{/sha}`, git_refs_url: `${u}/git/refs{/sha}`, git_tags_url: `${u}/git/tags{/sha}`,
    issue_comment_url: `${u}/issues/comments{/number}`, issue_events_url: `${u}/issues/events{/number}`,
    issues_url: `${u}/issues{/number}`, keys_url: `${u}/keys{/key_id}`, labels_url: `${u}/labels{/name}`,
    languages_url: `${u}/languages`, merges_url: `${u}/merges`, milestones_url: `${u}/milestones{/number}`,
    notifications_url: `${u}/notifications{?since,all,participating}`, pulls_url: `${u}/pulls{/number}`,
    releases_url: `${u}/releases{/id}`, stargazers_url: `${u}/stargazers`, statuses_url: `${u}/statuses/{sha}`,
    subscribers_url: `${u}/subscribers`, subscription_url: `${u}/subscription`, tags_url: `${u}/tags`,
    teams_url: `${u}/teams`, trees_url: `${u}/git/trees{/sha}`, hooks_url: `${u}/hooks`,
  };
}

export function minimalRepository(c: RenderCtx, r: RepoRec): Record<string, unknown> {
  return repoUrls(c, r);
}

/** The full `repository` (REST) / `repository-webhooks` object. */
export function repository(c: RenderCtx, r: RepoRec): Record<string, unknown> {
  const full = `${c.org}/${r.name}`;
  return {
    ...repoUrls(c, r),
    git_url: `${c.web.replace(/^https?:/, 'git:')}/${full}.git`, ssh_url: `git@sim:${full}.git`,
    clone_url: `${c.web}/${full}.git`, svn_url: `${c.web}/${full}`, mirror_url: null, homepage: null, language: null,
    forks_count: 0, stargazers_count: 0, watchers_count: 0, size: 0, default_branch: 'main', open_issues_count: 0,
    is_template: false, topics: [], has_issues: true, has_projects: true, has_wiki: false, has_pages: false,
    has_downloads: true, has_discussions: false, archived: false, disabled: false, visibility: 'private',
    pushed_at: c.createdAt, created_at: c.createdAt, updated_at: c.createdAt, license: null,
    allow_forking: false, web_commit_signoff_required: false, forks: 0, open_issues: 0, watchers: 0,
  };
}

export const APP_PERMISSIONS = { actions: 'read', metadata: 'read', organization_self_hosted_runners: 'write', administration: 'write' } as const;
export const APP_EVENTS = ['workflow_job'] as const;

export function app(c: RenderCtx): Record<string, unknown> {
  return {
    id: c.appId, slug: c.appSlug, node_id: nodeId('Integration', c.appId), client_id: `Iv1.sim${c.appId}`,
    owner: account(c), name: `Flint simulator app ${c.appId}`, description: 'GitHub App of the Flint GitHub simulator',
    external_url: `${c.web}/${c.org}`, html_url: `${c.web}/apps/${c.appSlug}`, created_at: c.createdAt, updated_at: c.createdAt,
    permissions: APP_PERMISSIONS, events: APP_EVENTS, installations_count: 1,
  };
}

export function installation(c: RenderCtx): Record<string, unknown> {
  return {
    id: c.installationId, client_id: `Iv1.sim${c.appId}`, account: account(c), repository_selection: 'all',
    access_tokens_url: `${c.api}/app/installations/${c.installationId}/access_tokens`,
    repositories_url: `${c.api}/installation/repositories`,
    html_url: `${c.web}/organizations/${c.org}/settings/installations/${c.installationId}`,
    app_id: c.appId, app_slug: c.appSlug, target_id: c.orgId, target_type: 'Organization',
    permissions: APP_PERMISSIONS, events: APP_EVENTS, created_at: c.createdAt, updated_at: c.createdAt,
    single_file_name: null, has_multiple_single_files: false, single_file_paths: [], suspended_by: null, suspended_at: null,
  };
}

export function workflowRun(c: RenderCtx, run: RunRec, status: JobStatus, conclusion: JobConclusion | null): Record<string, unknown> {
  const u = `${c.api}/repos/${c.org}/${run.repo.name}/actions/runs/${run.id}`;
  const workflowId = 1000 + run.repo.id;
  return {
    id: run.id, name: 'CI', node_id: nodeId('WorkflowRun', run.id), head_branch: 'main', head_sha: run.headSha,
    path: '.github/workflows/ci.yml', display_title: `CI #${run.runNumber}`, run_number: run.runNumber, run_attempt: 1,
    event: 'push', status, conclusion, workflow_id: workflowId, check_suite_id: run.id + 1,
    check_suite_node_id: nodeId('CheckSuite', run.id + 1), url: u, html_url: `${c.web}/${c.org}/${run.repo.name}/actions/runs/${run.id}`,
    pull_requests: [], created_at: run.createdAt, updated_at: run.updatedAt, actor: account(c), triggering_actor: account(c),
    run_started_at: run.createdAt, jobs_url: `${u}/jobs`, logs_url: `${u}/logs`, check_suite_url: `${c.api}/repos/${c.org}/${run.repo.name}/check-suites/${run.id + 1}`,
    artifacts_url: `${u}/artifacts`, cancel_url: `${u}/cancel`, rerun_url: `${u}/rerun`, previous_attempt_url: null,
    workflow_url: `${c.api}/repos/${c.org}/${run.repo.name}/actions/workflows/${workflowId}`,
    head_commit: { id: run.headSha, tree_id: run.headSha.split('').reverse().join(''), message: 'Simulated commit', timestamp: run.createdAt, author: { name: 'sim', email: 'sim@example.invalid' }, committer: { name: 'sim', email: 'sim@example.invalid' } },
    repository: minimalRepository(c, run.repo), head_repository: minimalRepository(c, run.repo),
  };
}

/** A job as `GET …/actions/jobs/{id}` renders it and as the `workflow_job` webhook carries it. */
export function job(c: RenderCtx, j: JobRec): Record<string, unknown> {
  const repo = `${c.org}/${j.run.repo.name}`;
  return {
    id: j.id, run_id: j.run.id, workflow_name: 'CI', head_branch: 'main',
    run_url: `${c.api}/repos/${repo}/actions/runs/${j.run.id}`, run_attempt: 1, node_id: nodeId('CheckRun', j.id),
    head_sha: j.run.headSha, url: `${c.api}/repos/${repo}/actions/jobs/${j.id}`,
    html_url: `${c.web}/${repo}/actions/runs/${j.run.id}/job/${j.id}`,
    status: j.status, conclusion: j.conclusion, created_at: j.createdAt, started_at: j.startedAt, completed_at: j.completedAt,
    name: j.name, steps: [], check_run_url: `${c.api}/repos/${repo}/check-runs/${j.id}`, labels: [...j.labels],
    runner_id: j.runner?.id ?? null, runner_name: j.runner?.name ?? null,
    runner_group_id: j.runner?.groupId ?? null, runner_group_name: j.runner?.groupName ?? null,
  };
}

export function runner(r: RunnerRec): Record<string, unknown> {
  let labelId = 0;
  return {
    id: r.id, name: r.name, os: r.connected ? 'Linux' : 'unknown', status: r.status, busy: r.busy, ephemeral: true,
    runner_group_id: r.groupId,
    labels: [
      ...r.defaultLabels.map((name) => ({ id: ++labelId, name, type: 'read-only' })),
      ...r.customLabels.map((name) => ({ id: ++labelId, name, type: 'custom' })),
    ],
  };
}

export function runnerGroup(c: RenderCtx, g: GroupRec): Record<string, unknown> {
  return {
    id: g.id, name: g.name, visibility: 'all', default: g.isDefault,
    runners_url: `${c.api}/orgs/${c.org}/actions/runner-groups/${g.id}/runners`, inherited: false,
    allows_public_repositories: false, restricted_to_workflows: false, selected_workflows: [], workflow_restrictions_read_only: false,
  };
}
