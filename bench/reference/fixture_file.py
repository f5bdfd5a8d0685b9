"""What both reference generators do last: write their fixture, or (--check) compare with it."""

import argparse
import json
import sys


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
