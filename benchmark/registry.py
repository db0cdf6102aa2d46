"""Name -> object registries with duplicate rejection and "did you mean" suggestions.

Registries are lazy: built-in entries are declared as `name -> "module"` tables so that names can be
listed without importing torch; the module is imported (and registers its object with the decorator)
on first `get`. Third-party methods join through the `benchmark.methods` entry-point group.
"""

from __future__ import annotations

import ast
import difflib
import importlib
import importlib.util
from collections.abc import Callable, Iterable
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from benchmark.errors import UsageError

T = TypeVar("T")


def unknown_name_message(kind: str, name: str, choices: Iterable[str]) -> str:
    """One line naming the bad value, the closest matches and the valid choices."""
    choices = sorted(choices)
    close = difflib.get_close_matches(name.lower(), choices, n=2, cutoff=0.5)  # names are matched in any case
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return f"unknown {kind} {name!r}{hint} (choose from: {', '.join(choices)})"


class Registry(Generic[T]):
    """A typed name -> object table.

    Args:
        kind: what the entries are ("method", "protocol"), used in messages.
        builtin: name -> module path; importing the module must register `name`.
        entry_point_group: optional importlib.metadata group of third-party entries
            (`name = "package.module"` or `name = "package.module:Object"`).
    """

    def __init__(self, kind: str, builtin: dict[str, str] | None = None, entry_point_group: str | None = None) -> None:
        self.kind = kind
        self._builtin = dict(builtin or {})
        self._group = entry_point_group
        self._entries: dict[str, T] = {}
        self._aliases: dict[str, str] = {}
        self._external: dict[str, str] | None = None
        self._distributions: dict[str, str] = {}  # plugin name -> "distribution==version"

    def register(self, name: str, *, aliases: Iterable[str] = ()) -> Callable[[T], T]:
        """Decorator registering `obj` under the explicit lower-case `name`."""
        if name != name.lower() or not name.replace("_", "").isalnum():
            raise ValueError(f"{self.kind} names are lower_snake_case, got {name!r}")

        def add(obj: T) -> T:
            if name in self._entries or name in self._aliases:
                raise KeyError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = obj
            for alias in aliases:
                if alias in self._aliases or alias in self._entries:
                    raise KeyError(f"{self.kind} alias {alias!r} is already registered")
                self._aliases[alias] = name
            return obj

        return add

    def _external_modules(self) -> dict[str, str]:
        if self._external is None:
            self._external = {}
            if self._group:
                for ep in entry_points(group=self._group):
                    if ep.name in self._builtin:
                        raise KeyError(f"{self.kind} {ep.name!r} from entry point {ep.value!r} clashes with a built-in")
                    self._external[ep.name] = ep.value.split(":")[0]
                    dist = getattr(ep, "dist", None)  # None for an entry point without its distribution
                    if dist is not None:
                        self._distributions[ep.name] = f"{dist.name}=={dist.version}"
        return self._external

    def builtin_names(self) -> list[str]:
        """The entries that ship with the harness (what `--methods all` means), sorted."""
        return sorted(self._builtin)

    def plugin_names(self) -> list[str]:
        """The entries that installed packages add through the entry-point group, sorted."""
        return sorted(self._external_modules())

    def distribution(self, name: str) -> str | None:
        """`distribution==version` of the package a plugin entry comes from (None for a built-in)."""
        self._external_modules()
        return self._distributions.get(self.canonical(name))

    def _modules(self) -> dict[str, str]:
        return {**self._builtin, **self._external_modules()}

    def add_alias(self, alias: str, name: str) -> None:
        """Declare `alias` for a (possibly not yet imported) entry, e.g. `base2new` for `b2n`."""
        if alias in self._aliases or alias in self._modules():
            raise KeyError(f"{self.kind} alias {alias!r} is already registered")
        self._aliases[alias] = name

    def canonical(self, name: str) -> str:
        """Resolve aliases and case (`CoCoOp`, `B2N`); raise UsageError with suggestions for an unknown name."""
        for candidate in (name, name.lower()):
            candidate = self._aliases.get(candidate, candidate)
            if candidate in self._entries or candidate in self._modules():
                return candidate
        raise UsageError(unknown_name_message(self.kind, name, [*self.names(), *self._aliases]))

    def get(self, name: str) -> T:
        """Return the entry, importing its module on first use."""
        name = self.canonical(name)
        if name not in self._entries:
            importlib.import_module(self._modules()[name])
            if name not in self._entries:
                raise KeyError(
                    f"module {self._modules()[name]!r} did not register {self.kind} {name!r}: an entry point's name"
                    f" must be the name its class registers with (@{self.kind.upper()}S.register({name!r}))"
                )
        return self._entries[name]

    def names(self) -> list[str]:
        """All known names (registered or declared), sorted."""
        return sorted(set(self._entries) | set(self._modules()))

    def aliases_of(self, name: str) -> list[str]:
        """Aliases that resolve to `name`."""
        return sorted(a for a, n in self._aliases.items() if n == name)

    def summary(self, name: str) -> str:
        """First docstring line of the entry's module, read without importing it (no torch)."""
        module = self._modules().get(self.canonical(name))
        spec = importlib.util.find_spec(module) if module else None
        if spec is None or spec.origin is None:
            return ""
        with open(spec.origin, encoding="utf-8") as fh:
            doc = ast.get_docstring(ast.parse(fh.read())) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and any(n in self._aliases or n in self.names() for n in (name, name.lower()))


def _table(package: str, name: str) -> dict[str, str]:
    return dict(getattr(importlib.import_module(package), name))


METHODS: Registry[type] = Registry(
    "method", builtin=_table("methods", "BUILTIN"), entry_point_group="benchmark.methods"
)
PROTOCOLS: Registry[object] = Registry("protocol", builtin=_table("protocols", "BUILTIN"))
DEFAULT_PROTOCOL = "b2n"  # what `run`, `compare` and `tune` use without `--protocol`
for _alias, _name in _table("protocols", "ALIASES").items():
    PROTOCOLS.add_alias(_alias, _name)
