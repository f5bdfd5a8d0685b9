"""What both reference generators do last: write their fixture, or (--check) compare with it."""

import argparse
import json
import os
import sys

import numpy as np


def replay_shared(shared, run_case):
    """Replays the cases of the shared reference file beside the checkout, when there is one:
    `run_case(case, shapes, params, grads)` gives the parameters after each step (or None for a
    case the script does not make); exits non-zero unless they agree to 1e-12. Returns the cases
    replayed, by name."""
    if not os.path.exists(shared):
        print(f'self-check skipped: {shared} not found')
        return {}
    with open(shared) as f:
        ref = json.load(f)
    params = [np.array(p) for p in ref['params']]
    grads = [[np.array(g) for g in step] for step in ref['grads']]
    replayed = {}
    for case in ref['cases']:
        got = run_case(case, ref['shapes'], params, grads[:len(case['lr'])])
        if got is None:
            print(f"self-check: '{case['name']}' skipped ({case['optimizer']} is not made by this script)")
            continue
        worst = max(abs(a - b) for step_g, step_e in zip(got, case['expected'])
                    for tg, te in zip(step_g, step_e) for a, b in zip(tg, te))
        if worst > 1e-12:
            sys.exit(f"self-check failed: '{case['name']}' differs from the shared reference by {worst:g}")
        print(f"self-check: '{case['name']}' reproduced (max abs difference {worst:g})")
        replayed[case['name']] = case
    return replayed


def write_or_check(path, description, checks, build, steps):
    """Runs `checks`, builds the fixture with `build()`, then writes it to `path`, or with --check
    exits non-zero when the file on disk differs from what it would write."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('--check', action='store_true', help='compare with the fixture on disk instead of writing it')
    args = parser.parse_args()
    for check in checks:
        check()
    data = build()
    text = json.dumps(data) + '\n'
    if args.check:
        try:
            with open(path) as f:
                on_disk = f.read()
        except FileNotFoundError:
            sys.exit(f'{path} is missing: run this script without --check to write it')
        if on_disk != text:
            sys.exit(f'{path} differs from what this script generates')
        print(f'{path} is up to date ({len(data["cases"])} cases, {steps} steps)')
        return
    with open(path, 'w') as f:
        f.write(text)
    print(f'wrote {path}: {len(data["cases"])} cases, {steps} steps')
