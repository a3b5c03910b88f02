#!/bin/sh
# A fake Actions runner for the GitHub simulator, in POSIX sh with busybox
# applets only (wget, sed, mktemp), so it runs inside a minimal guest image.
#
#   fake-runner.sh API_URL JITCONFIG_FILE [WAIT_SECONDS] [CONCLUSION] [JOB_SECONDS]
#
# Uses its JIT config once (connect), waits up to WAIT_SECONDS (default 60)
# for one job, "runs" it for JOB_SECONDS (default 0), reports CONCLUSION
# (default success) and exits 0. Exits 3 when no job came (after
# disconnecting, so the ephemeral runner is gone), 1 on any error.
# The JIT config is read from a file and sent from a file: it never appears
# on a command line.
set -u

api=${1:?usage: fake-runner.sh API_URL JITCONFIG_FILE [WAIT_SECONDS] [CONCLUSION] [JOB_SECONDS]}
jitfile=${2:?usage: fake-runner.sh API_URL JITCONFIG_FILE [WAIT_SECONDS] [CONCLUSION] [JOB_SECONDS]}
wait_total=${3:-60}
conclusion=${4:-success}
job_seconds=${5:-0}

body=$(mktemp) || exit 1
trap 'rm -f "$body"' EXIT

# post PATH: POSTs the JSON in $body, prints the answer (empty for 204); fails on 4xx/5xx.
post() {
  # (no -T: busybox 1.35 wget crashes with it; its default read timeout of 900 s covers the 50 s long poll)
  wget -q -O - --header 'Content-Type: application/json' --post-file "$body" "$api$1"
}

# field NAME: a string or number field of the one-line JSON answer on stdin.
field() {
  sed -n -e "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p" -e "t" -e "s/.*\"$1\":\\([0-9][0-9]*\\).*/\\1/p"
}

{ printf '{"jitconfig":"'; tr -d ' \n\r\t' < "$jitfile"; printf '"}'; } > "$body" || exit 1
answer=$(post /_sim/runner/connect) || { echo "fake-runner: connect failed" >&2; exit 1; }
session=$(printf '%s' "$answer" | field session)
runner_id=$(printf '%s' "$answer" | field runner_id)
[ -n "$session" ] || { echo "fake-runner: connect answer without a session" >&2; exit 1; }
echo "fake-runner: connected runner_id=$runner_id"

job_id=
remaining=$wait_total
while [ "$remaining" -gt 0 ]; do
  step=$remaining
  [ "$step" -gt 50 ] && step=50
  printf '{"session":"%s","wait_seconds":%s}' "$session" "$step" > "$body"
  answer=$(post /_sim/runner/acquire) || { echo "fake-runner: acquire failed" >&2; exit 1; }
  job_id=$(printf '%s' "$answer" | field job_id)
  [ -n "$job_id" ] && break
  remaining=$((remaining - step))
done

if [ -z "$job_id" ]; then
  printf '{"session":"%s"}' "$session" > "$body"
  post /_sim/runner/disconnect > /dev/null || true
  echo "fake-runner: no job within ${wait_total}s"
  exit 3
fi
echo "fake-runner: job job_id=$job_id"
[ "$job_seconds" -gt 0 ] && sleep "$job_seconds"
printf '{"session":"%s","conclusion":"%s"}' "$session" "$conclusion" > "$body"
post /_sim/runner/complete > /dev/null || { echo "fake-runner: complete failed" >&2; exit 1; }
echo "fake-runner: completed job_id=$job_id conclusion=$conclusion"
