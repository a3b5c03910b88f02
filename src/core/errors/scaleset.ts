import type { CatalogueEntry } from './entry.ts';

/** Error codes of the scale-set protocol (docs/scale-sets.md). Keys are stable; never rename or reuse one. */
export const scaleSetErrors = {
  FLINT_ERR_SCALESET_REGISTRATION_FAILED: {
    title: 'GitHub refused to hand out the Actions service address and admin token for scale sets',
    hint: 'Check that the App is installed on `github.organization` with "Self-hosted runners: read & write", and that `github.apiUrl` and the GitHub web URL name the same GitHub; Flint tries the registration again on its next pass.',
  },
  FLINT_ERR_SCALESET_SESSION_CONFLICT: {
    title: 'Another listener holds the scale set\'s message session',
    hint: 'Only one listener may poll a scale set. If another Flint (or an ARC listener) uses the same scale-set name in the same runner group, give one of them another name. A session left by a crashed Flint expires by itself within a few minutes; Flint deletes a stale session only when it is one it recorded as its own.',
  },
  FLINT_ERR_SCALESET_SESSION_GONE: {
    title: 'The Actions service no longer knows the scale set\'s message session',
    hint: 'Nothing to do: the session expired or the service forgot it, and Flint opens a new one. If it happens every few minutes, check that the host\'s clock is right and that nothing else deletes the session.',
  },
  FLINT_ERR_SCALESET_NOT_FOUND: {
    title: 'The scale set does not exist (any more) in the Actions service',
    hint: 'GitHub removes a scale set that has been inactive for a long time; Flint creates it again under the same name. If it keeps disappearing, check whether someone deletes it in the organization\'s runner settings.',
  },
  FLINT_ERR_SCALESET_PROTOCOL: {
    title: 'The Actions service answered in a shape Flint does not understand',
    hint: 'The message names the call and what was wrong with the answer. GitHub may have changed the scale-set protocol; report it with the message (it carries no secrets).',
  },
} as const satisfies Record<string, CatalogueEntry>;
