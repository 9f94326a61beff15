"""Hyper-parameter sweeps on optuna: grid, random or TPE search over dotted keys of a train config.

A sweep file names a base train config and the values to try:

    base: configs/tiny.yaml          # relative to the current folder or to this file
    grid: {optim.lr: [1e-3, 3e-4]}   # every combination
    random: {optim.weight_decay: {log_uniform: [1e-3, 1e-1]}}   # `samples` draws per grid point
    set: {train.max_steps: 50}       # applied to every trial
    sampler: random                  # grid (only a grid), random (the default with `random`), tpe
    pruner: median                   # stop trials whose val loss trails the median (default none)
    samples: 1, max_trials: 8, seed: 0, metric: final_val_loss, parallel: 1

Each trial runs the `train` command as a subprocess in `<out>/trial-NNN/run`, with its log in
`<out>/trial-NNN/train.log`; the optuna study in `<out>/study.db` holds every trial's values
and outcome, so rerunning the same sweep continues it. The modules, in the order they act:

- `spec`: the sweep file, and checking each trial's values with gpt_train's load_config;
- `study`: the optuna study, samplers and the queue of trials (resume, retries);
- `trials`: one trial as a subprocess, and what its exit code means;
- `protocol`: the contract with the trial command (exit codes, the environment variable);
- `pruning`: the `train` side of pruning, an on_step hook that reports to the study;
- `runner`: `run_sweep`, which ties them together;
- `report`: results.csv, results.md, the plot and best_config.yaml.

This package imports nothing itself, so `train` can read `protocol` without optuna or pandas.
"""
