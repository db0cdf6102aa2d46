"""`python -m benchmark parity FIXTURE.pt ...`: every method against the reference fixtures."""

from __future__ import annotations


def add_parser(sub) -> None:
    """Add `parity` to the CLI."""
    p = sub.add_parser("parity", help="check methods against reference fixtures (../shared/parity/*.pt)")
    p.add_argument("fixtures", nargs="+", help="parity fixture files (.pt), made by running the reference code")
    p.add_argument("--verbose", action="store_true", help="print every quantity, not only the worst")
    p.set_defaults(handler=cmd_parity)


def cmd_parity(args) -> int:
    """`parity`: scaled errors per quantity; exit 0 only if all are within bounds."""
    from benchmark.core.parity import load_fixture, run_fixture

    for path in args.fixtures:
        load_fixture(path)  # every fixture is checked for readability before any work
    all_ok = True
    for path in args.fixtures:
        for case, checks in run_fixture(path):
            ok = all(c.ok for c in checks)
            all_ok &= ok
            print(f"{'PASS' if ok else 'FAIL'} {case}")
            for check in checks:
                if args.verbose or not check.ok:
                    note = f" ({check.note})" if check.note else ""
                    flag = "ok " if check.ok else "BAD"
                    print(f"    {flag} {check.name:<70} {check.error:.2e} <= {check.bound:.0e}{note}")
            worst = max((c for c in checks if c.bound > 0), key=lambda c: c.error / c.bound, default=None)
            if worst is not None and not args.verbose:
                print(f"    worst: {worst.name} {worst.error:.2e} (bound {worst.bound:.0e})")
    return 0 if all_ok else 1
