/**
 * The lifecycle of one VM, as data: every allowed move is a row of
 * TRANSITIONS, and `checkTransition` is the one function that decides.
 *
 *   preparing ──► booting ──► running ──► stopped
 *       │            │           │           ▲
 *       │            ▼           ▼           │
 *       └────────► stopping ◄────┘───────────┤
 *       │            │                       │
 *       └────────────┴──────► failed ◄───────┘ (see the table for which)
 *
 * Meaning of the states (what the host holds at that moment):
 *   preparing  record persisted; disks, address, tap and work dir being made
 *   booting    the VMM process runs; the guest has not printed "booted" yet
 *   running    the guest printed "FLINT-MARKER booted"
 *   stopping   Flint asked the VMM to end (stop request, timeout, shutdown)
 *   stopped    the VMM has ended normally AND every host resource is released
 *   failed     the VM ended abnormally AND every host resource is released
 *
 * Invariant: `stopped` and `failed` are terminal and are entered only after
 * teardown, so a VM in a terminal state holds no tap, lease, disk or process.
 * A record in any other state found at start-up belongs to a crashed Flint
 * and is swept (→ failed, reason "flint restarted").
 */
import { FlintError } from './errors/index.ts';

export const VM_STATES = ['preparing', 'booting', 'running', 'stopping', 'stopped', 'failed'] as const;
export type VmState = (typeof VM_STATES)[number];

export const TERMINAL_STATES: ReadonlySet<VmState> = new Set<VmState>(['stopped', 'failed']);

export function isTerminal(state: VmState): boolean {
  return TERMINAL_STATES.has(state);
}

/** One allowed move and why it happens. */
interface Edge {
  readonly to: VmState;
  readonly why: string;
}

/**
 * The transition table. Rows are the only moves allowed; everything else is
 * an illegal transition. Odd edges carry a comment.
 */
export const TRANSITIONS: Readonly<Record<VmState, readonly Edge[]>> = {
  preparing: [
    { to: 'booting', why: 'host side ready, the VMM process started' },
    // A stop (shutdown, cancelled demand) may arrive while disks and the tap
    // are still being made: the VMM is never started, teardown still runs.
    { to: 'stopping', why: 'stop requested before the VMM started' },
    // Preparation or the VMM start failed, or the start-up sweep found a
    // record a crashed Flint left in this state.
    { to: 'failed', why: 'preparation failed, the VMM did not start, or flint restarted' },
  ],
  booting: [
    { to: 'running', why: 'the guest printed the booted marker' },
    { to: 'stopping', why: 'boot timeout or stop requested' },
    // The VMM ended on its own before the guest said it booted: always a
    // failure (a crash, a kernel panic with panic=1, a bad image). There is
    // deliberately no booting → stopped edge.
    { to: 'failed', why: 'the VMM exited before the guest booted, or flint restarted' },
  ],
  running: [
    { to: 'stopping', why: 'maximum lifetime reached or stop requested' },
    // The normal end of a job skips `stopping`: the runner exits, the guest
    // agent powers the VM off and the VMM exits by itself. Flint did not ask.
    { to: 'stopped', why: 'the guest powered itself off (the runner ended)' },
    { to: 'failed', why: 'the VMM crashed, or flint restarted' },
  ],
  stopping: [
    { to: 'stopped', why: 'the VMM ended after a stop request and teardown finished' },
    // A stop caused by a failure (boot timeout, maximum lifetime) ends in
    // `failed` even though the stop itself went fine: the state records why
    // the VM ended, not how.
    { to: 'failed', why: 'the stop was caused by a failure, or flint restarted' },
  ],
  stopped: [],
  failed: [],
};

export function canTransition(from: VmState, to: VmState): boolean {
  return TRANSITIONS[from].some((e) => e.to === to);
}

/**
 * The one check every state change goes through. Returns `to` when the move
 * is allowed; throws FLINT_ERR_VM_ILLEGAL_TRANSITION otherwise.
 */
export function checkTransition(vmId: string, from: VmState, to: VmState, trigger: string): VmState {
  if (!canTransition(from, to)) {
    throw new FlintError('FLINT_ERR_VM_ILLEGAL_TRANSITION', `VM ${vmId}: ${from} → ${to} is not allowed (trigger: ${trigger})`, {
      details: { vmId, from, to, trigger },
    });
  }
  return to;
}

export function isVmState(s: string): s is VmState {
  return (VM_STATES as readonly string[]).includes(s);
}

/**
 * How a VM that has ended is classified, from what the supervisor saw. Pure,
 * so the rules are tested without VMs:
 *  - a stop Flint made because of a failure (boot timeout, lifetime) → failed
 *  - the VMM ended before the guest booted → failed
 *  - the VMM died from a signal Flint did not send, or exited non-zero → failed
 *  - otherwise (clean power-off, or a requested stop) → stopped
 */
export function classifyEnd(input: {
  readonly stateAtExit: VmState;
  /** Why Flint asked the VM to stop, if it did; `failure` marks stops caused by a failure. */
  readonly stopRequest?: { readonly reason: string; readonly failure: boolean };
  readonly exit: { readonly code: number | null; readonly signal: string | null };
}): { readonly state: 'stopped' | 'failed'; readonly reason: string } {
  const { stopRequest, exit } = input;
  if (stopRequest !== undefined) {
    return { state: stopRequest.failure ? 'failed' : 'stopped', reason: stopRequest.reason };
  }
  const how = exit.signal !== null ? `signal ${exit.signal}` : `code ${exit.code ?? 'unknown'}`;
  if (input.stateAtExit === 'preparing' || input.stateAtExit === 'booting') {
    return { state: 'failed', reason: `the VMM exited before the guest booted (${how})` };
  }
  if (exit.signal !== null || exit.code !== 0) {
    return { state: 'failed', reason: `the VMM ended abnormally (${how})` };
  }
  return { state: 'stopped', reason: 'the guest powered off' };
}
