#!/usr/bin/env bash
# The clean-up of one test process that survives its death (test/watchdog.ts starts it).
#
#   scripts/test-watchdog.sh TEST_PID TEST_START [RUNNER_PID RUNNER_START]
#
# It runs in a session of its own (a Ctrl-C or a kill of the test's process group does not reach
# it), reading what to clean up from its stdin, a pipe whose other end only the test process holds.
# When the pipe ends — the test process exited or died, SIGKILL included — it cleans up whatever is
# still registered. When the runner that started the test process (`node --test`) is gone, the
# test process is an orphan whose results nobody reads: it is killed, which ends the pipe.
#
# Lines on stdin (a later `forget <line>` withdraws the line):
#   pid PID START          SIGKILL the process and the group it leads, if it is still that process
#   env NAME=VALUE         SIGKILL every process whose environment holds exactly NAME=VALUE
#   run FILE ARG...        run a clean-up command (e.g. slurm-test-cluster.sh down ROOT)
#
# A process is named by its pid and its start time (/proc/PID/stat field 22): a pid reused by
# someone else's process is never signalled.
set -u

start_time() { # pid → its start time, or nothing when it is gone
  local stat rest
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  rest=${stat##*) }
  # shellcheck disable=SC2086
  set -- $rest
  [ "$1" = Z ] && return 0
  shift 19
  echo "$1"
}

same_process() { [ -n "$2" ] && [ "$(start_time "$1")" = "$2" ]; }

kill_same() { # pid start
  same_process "$1" "$2" || return 0
  kill -KILL "-$1" 2>/dev/null
  kill -KILL "$1" 2>/dev/null
}

kill_env() { # NAME=VALUE
  local p pid
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    [ "$pid" = "$$" ] && continue
    if { tr '\0' '\n' <"$p/environ"; } 2>/dev/null | grep -qxF -- "$1"; then
      kill -KILL "$pid" 2>/dev/null
    fi
  done
}

test_pid=$1 test_start=$2 runner_pid=${3:-} runner_start=${4:-}
entries=()

sweep_marks() {
  local entry
  for entry in "${entries[@]}"; do
    case $entry in
      "env "*) kill_env "${entry#env }" ;;
    esac
  done
}

clean_up() {
  local entry
  # Processes first (their daemons' own clean-up may need them gone), then the commands.
  for entry in "${entries[@]}"; do
    case $entry in
      # shellcheck disable=SC2086
      "pid "*) set -- $entry; kill_same "$2" "$3" ;;
    esac
  done
  sweep_marks
  for entry in "${entries[@]}"; do
    case $entry in
      # shellcheck disable=SC2086
      "run "*) set -- $entry; shift; timeout 60 "$@" >/dev/null 2>&1 ;;
    esac
  done
  # A process started by a clean-up command can carry a mark too: a second sweep.
  sweep_marks
}

forget() {
  local i
  for i in "${!entries[@]}"; do
    if [ "${entries[$i]}" = "$1" ]; then
      unset 'entries[i]'
      return
    fi
  done
}

while :; do
  IFS= read -r -t 0.5 line
  status=$?
  if [ "$status" -eq 0 ]; then
    case $line in
      "forget "*) forget "${line#forget }" ;;
      pid\ *|env\ *|run\ *) entries+=("$line") ;;
    esac
    continue
  fi
  if [ "$status" -gt 128 ]; then
    # No line for half a second: is the runner still there?
    if [ -n "$runner_pid" ] && ! same_process "$runner_pid" "$runner_start" && same_process "$test_pid" "$test_start"; then
      kill -KILL "$test_pid" 2>/dev/null
    fi
    continue
  fi
  break # the pipe ended: the test process is gone, or done with its clean-up
done
# The pipe ends at the test's exit: processes it killed on its way out may still be dying.
[ ${#entries[@]} -eq 0 ] || clean_up
