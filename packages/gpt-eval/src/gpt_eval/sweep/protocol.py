"""What a sweep expects of the command that runs one trial (by default the `train` command).

The sweep starts `COMMAND --config BASE --run-dir DIR [--resume] --set key=value ... TRAIN_ARGS`
and reads how it ended from its exit code:

- 0: finished; `DIR/metrics.csv` holds its losses.
- EXIT_INTERRUPTED: stopped early with a checkpoint saved: pruned (the trial says so in the
  study, see below), or by Ctrl-C, and the next run of the sweep continues it with `--resume`.
- 130 or death by SIGINT (aborted without saving), or any end while the sweep itself is being
  stopped: interrupted as well. The next run continues from the trial's latest checkpoint,
  or starts it again when it stopped before its first one (e.g. while preparing data).
- anything else: failed; the last `error:` line of its output is the recorded reason.

In a sweep with a pruner, the environment variable TRIAL_ENV names the study and the trial,
so that `train` can report its validation losses and be pruned (gpt_eval.sweep.pruning).
`train` imports this module on every run, so it holds constants only (no optuna, no pandas).
"""

from __future__ import annotations

# 75 is EX_TEMPFAIL in BSD's sysexits.h, "a temporary failure; the user is invited to retry":
# the run is incomplete but saved, and rerunning with --resume continues it. It is neither 0
# (finished), 2 (a user error, gpt_cli/_common.py) nor 130 (128 + SIGINT: aborted, not saved).
EXIT_INTERRUPTED = 75

# JSON {"storage": sqlite URL, "study": name, "trial": number, "pruner": settings or null}.
TRIAL_ENV = "GPTKIT_SWEEP_TRIAL"

# The user attribute a pruned trial's process sets before it stops (the step it stopped at).
PRUNED_AT = "pruned_at_step"
