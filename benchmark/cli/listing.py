"""`python -m benchmark list`: registered methods, protocols and datasets, without importing torch."""

from __future__ import annotations


def add_parser(sub) -> None:
    """Add `list` to the CLI."""
    p = sub.add_parser("list", help="list methods, protocols or datasets (no torch import)")
    p.add_argument("what", nargs="?", default="all", choices=["all", "methods", "protocols", "datasets"])
    p.add_argument("--profile", default="world")
    p.set_defaults(handler=cmd_list)


def cmd_list(args) -> int:
    """`list`: registered names with one-line summaries."""
    from benchmark.registry import METHODS, PROTOCOLS

    if args.what in ("all", "methods"):
        print("methods:")
        width = max(map(len, METHODS.names()), default=0)
        for name in METHODS.names():
            print(f"  {name:<{width}}  {METHODS.summary(name)}")
    if args.what in ("all", "protocols"):
        print("protocols:")
        width = max(map(len, PROTOCOLS.names()), default=0)
        for name in PROTOCOLS.names():
            aliases = PROTOCOLS.aliases_of(name)
            extra = f" (aliases: {', '.join(aliases)})" if aliases else ""
            print(f"  {name:<{width}}  {PROTOCOLS.summary(name)}{extra}")
    if args.what in ("all", "datasets"):
        from benchmark.plan.profiles import get_profile

        profile = get_profile(args.profile)
        print(f"datasets ({profile.name} profile):")
        for name, spec in profile.datasets.items():
            count = f"{len(spec.classnames)} classes" if spec.classnames else "classes from the split file"
            print(f"  {name:<13} {spec.folder}/{spec.split_file:<20} {count}")
    return 0
