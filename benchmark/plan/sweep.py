"""From a sweep request to validated RunSpecs, before any model or image is loaded.

Every user-facing mistake (unknown method, preset, dataset or override key, a value of the wrong
type, a bad split file, a configuration that cannot transfer to unseen classes, a model that can be
neither found locally nor downloaded) is found here and raised as one-line `UsageError`s.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from benchmark import __version__
from benchmark.data.catalog import Dataset, open_dataset
from benchmark.errors import UsageError
from benchmark.plan.overrides import apply_overrides, field_types, to_plain
from benchmark.plan.profiles import Profile, get_profile
from benchmark.plan.specs import RunSpec
from benchmark.registry import DEFAULT_PROTOCOL, METHODS, PROTOCOLS, unknown_name_message

log = logging.getLogger(__name__)


@dataclass
class SweepRequest:
    """What `benchmark run` was asked to do (CLI flags or a YAML config)."""

    methods: Sequence[str] = ("all",)
    protocol: str = DEFAULT_PROTOCOL
    datasets: Sequence[str] | None = None
    seeds: Sequence[int] | None = None  # None: the profile's default seeds
    shots: Sequence[int] | None = None  # None: the protocol's default shots (16; few-shot 1,2,4,8,16)
    profile: str = "world"
    backbone: str | None = None  # None: the profile's backbone
    backbones: Sequence[str] | None = None  # several backbones: one more axis of the sweep (not with `backbone`)
    allow_partial_weights: bool = False  # load a checkpoint the weight audit finds incomplete (tagged)
    presets: dict[str, str] = field(default_factory=dict)  # method (or "*") -> preset
    overrides: dict[str, Any] = field(default_factory=dict)
    data_root: str | None = None


@dataclass
class Plan:
    """Validated cells plus what building them resolved."""

    profile: Profile
    protocol: Any
    specs: list[RunSpec]
    labels: dict[str, str]  # run_key -> method label shown in leaderboards
    data_root: Any
    datasets: dict[str, Dataset]


def method_names(requested: Sequence[str]) -> list[str]:
    """Expand `all` (the built-in methods) and `plugins` (installed ones), canonicalise and de-duplicate.

    `all` does not grow when a plugin is installed: the default sweep stays the one the committed leaderboards
    come from; plugin methods run by name or with `plugins`.
    """
    names: list[str] = []
    for name in requested:
        groups = {"all": METHODS.builtin_names, "plugins": METHODS.plugin_names}
        expanded = groups[name.lower()]() if name.lower() in groups else [METHODS.canonical(name)]
        names.extend(n for n in expanded if n not in names)
    if not names:
        raise UsageError("no method selected")
    return names


def _scoped_overrides(overrides: dict[str, Any], methods: list[str]) -> dict[str, dict[str, Any]]:
    """Split `--set` keys by scope: `coop.n_ctx` applies to coop only, bare keys to all methods."""
    scoped: dict[str, dict[str, Any]] = {name: {} for name in methods}
    for key, value in overrides.items():
        head, dot, rest = key.partition(".")
        if dot and head in METHODS:
            target = METHODS.canonical(head)
            if target not in scoped:
                raise UsageError(f"override {key!r} names method {target!r}, which is not selected")
            scoped[target][rest] = value
        else:
            for name in methods:
                scoped[name][key] = value
    return scoped


def _resolve_method(
    name: str, preset: str | None, overrides: dict[str, Any], profile: str, protocol: str, *, scoped: bool
) -> tuple[str, Any, Any, tuple[tuple[str, str], ...]]:
    """Preset name, method config and train config of one method, with its applicable overrides."""
    cls = METHODS.get(name)
    preset = preset or cls.default_preset(profile, protocol)
    if preset not in cls.presets:
        raise UsageError(unknown_name_message(f"{name} preset", preset, cls.presets))
    base = cls.presets[preset]
    method_fields, train_fields = set(field_types(type(base.method))), set(field_types(type(base.train)))
    if not cls.requirements.trainable:
        # Training settings cannot change an untrained method's numbers; ignore them for it.
        train_fields = set()
    method_over, train_over, applied = {}, {}, []
    for key, value in overrides.items():
        scope, dot, rest = key.partition(".")
        if dot and scope in ("method", "train"):
            fields, bucket, short = (
                (method_fields, method_over, rest) if scope == "method" else (train_fields, train_over, rest)
            )
            if short not in fields:
                if scoped:
                    raise UsageError(unknown_name_message(f"{name} {scope} config key", short, fields))
                continue
        elif key in method_fields:
            bucket, short = method_over, key
        elif key in train_fields:
            bucket, short = train_over, key
        elif scoped:
            raise UsageError(unknown_name_message(f"{name} config key", key, method_fields | train_fields))
        else:
            continue
        bucket[short] = value
        applied.append((key, str(value)))
    method_cfg = apply_overrides(base.method, method_over, where=name)
    train_cfg = apply_overrides(base.train, train_over, where=f"{name} train")
    return preset, method_cfg, train_cfg, tuple(sorted(applied))


def build_plan(request: SweepRequest, *, require_models: bool = True) -> Plan:
    """Validate a request and expand it into RunSpecs (reads split files, loads no model).

    Every model the sweep will load (backbone weights, and the captioner and caption encoder when a
    method uses captions) must be local or downloadable (`benchmark.plan.models.check_models`);
    `require_models=False` (a dry run, which loads nothing) only warns about one that is not.
    """
    from benchmark.backbone.prepare import prepare_backbone
    from benchmark.plan.models import check_models

    profile = get_profile(request.profile)
    if not profile.generated:
        profile.data_root(request.data_root)  # a missing data root is reported before anything else
    protocol = PROTOCOLS.get(request.protocol)
    methods = method_names(request.methods)
    # a repeated seed or dataset is one run, not two
    seeds = list(dict.fromkeys(profile.seeds if request.seeds is None else request.seeds))
    # a dataset named in any case is the profile's (`RSICD` is `rsicd`: one run_key), and a repeat is one run
    dataset_names = list(dict.fromkeys(profile.dataset_name(n) for n in request.datasets)) if request.datasets else None
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise UsageError(f"seeds must be non-negative integers, got {seed!r}")
    shot_counts = list(dict.fromkeys(protocol.default_shots if request.shots is None else request.shots))
    for shots in shot_counts:
        if isinstance(shots, bool) or not isinstance(shots, int) or shots < 1:
            raise UsageError(f"shots must be positive integers, got {shots!r}")
    if not shot_counts:
        raise UsageError("no shot count selected")
    for key in request.presets:
        if key != "*" and key not in METHODS:
            raise UsageError(unknown_name_message("method in --preset", key, METHODS.names()))
    backbones = _backbones(request, profile)
    cells = protocol.plan(dataset_names, profile)
    names = sorted({c.dataset for c in cells} | {t for c in cells for t in c.targets})
    for name in names:
        profile.dataset(name)

    scoped = _scoped_overrides(dict(request.overrides), methods)
    unused = set(request.overrides)
    resolved = {}
    for name in methods:
        explicit = request.presets.get(name)
        if explicit is None and request.presets.get("*") in METHODS.get(name).presets:
            explicit = request.presets["*"]
        preset, method_cfg, train_cfg, applied = _resolve_method(
            name, explicit, scoped[name], profile.name, protocol.name, scoped=len(methods) == 1
        )
        cls = METHODS.get(name)
        method_cfg = cls.adapt_config(method_cfg, profile)
        unused -= {k for k, _ in applied} | {f"{name}.{k}" for k, _ in applied}
        resolved[name] = (preset, method_cfg, train_cfg, applied)
    if unused:
        key = sorted(unused)[0]
        raise UsageError(f"override {key!r} does not apply to any selected method or training config")
    if "*" in request.presets and not any(request.presets["*"] in METHODS.get(n).presets for n in methods):
        known = {p for n in methods for p in METHODS.get(n).presets}
        raise UsageError(unknown_name_message("preset", request.presets["*"], known))

    data_root = profile.data_root(request.data_root)
    datasets = {name: open_dataset(profile.dataset(name), data_root) for name in names}
    unseen = any(protocol.evaluates_unseen_classes(cell, datasets) for cell in cells)
    for name, (_, method_cfg, _, _) in resolved.items():
        reason = METHODS.get(name).config_transfer_error(method_cfg)
        if reason and unseen:
            # Not an error: its unseen-class evaluations are recorded as n/a (`CellOutput.add_not_applicable`).
            log.info("%s: %s; its %s evaluations of unseen classes will read n/a", name, reason, protocol.name)
    # After the input files (their mistakes are cheaper to report), before any cell: at most one network probe.
    captions = any(METHODS.get(name).requirements.captions for name in methods)
    for index, backbone in enumerate(backbones):  # the captioner and encoder are the same for every backbone
        check_models(profile, backbone, captions=captions and index == 0, require=require_models)
    identities = {
        b.label: prepare_backbone(b, require=require_models, allow_partial=request.allow_partial_weights).identity
        for b in backbones
    }
    specs, labels = [], {}
    # Backbone outermost: the cells of one backbone are contiguous, so a worker, taking cells in plan order,
    # moves on to the next backbone at most once instead of holding every backbone from its first cells.
    for backbone, name in itertools.product(backbones, methods):
        preset, method_cfg, train_cfg, applied = resolved[name]
        cls = METHODS.get(name)
        captions = f"{profile.captioner}/{profile.caption_encoder}" if cls.requirements.captions else ""
        trained = cls.requirements.trainable
        # A method that trains nothing draws nothing: one run per dataset and backbone, not one per seed.
        method_seeds = seeds if trained else [DETERMINISTIC_SEED]
        # ... and draws no shots: one run whatever the shot counts asked for.
        method_shots = shot_counts if trained else [0]
        for cell, seed, shots in itertools.product(cells, method_seeds, method_shots):
            used = (cell.dataset, *cell.targets)
            spec = RunSpec(
                method=name,
                preset=preset,
                overrides=applied,
                method_config=to_plain(method_cfg),
                train_config=train_cfg.spec_fields(),
                protocol=protocol.name,
                dataset=cell.dataset,
                targets=cell.targets,
                seed=seed,
                shots=shots,
                profile=profile.name,
                backbone=backbone.label,
                backbone_identity=identities[backbone.label],
                split_digests=tuple((d, datasets[d].split.sha256) for d in used),
                captions=captions,
                harness_version=__version__,
                numerics=RunSpec.numerics_label(name, cls.numerics_version, METHODS.distribution(name)),
            )
            specs.append(spec)
            labels[spec.run_key] = method_label(
                spec, profile, datasets, default=cls.default_preset(profile.name, protocol.name), protocol=protocol
            )
    return Plan(profile, protocol, specs, labels, data_root, datasets)


def _backbones(request: SweepRequest, profile: Profile) -> list[Any]:
    """The parsed, validated backbones of a sweep, in the order asked, one per label (a repeat is one axis value).

    `backbone` names one (default: the profile's), `backbones` several; each is checked exactly as a single
    `--backbone` is, before any work.
    """
    from benchmark.backbone.load import parse_backbone, validate_backbone

    if request.backbone and request.backbones is not None:
        raise UsageError("--backbone and --backbones are mutually exclusive: give one backbone or a list")
    if request.backbones is None:
        texts = [request.backbone or profile.backbone]
    else:
        texts = [b.strip() for b in request.backbones if b.strip()]
        if not texts:
            raise UsageError("--backbones is empty")
    parsed: dict[str, Any] = {}
    for text in texts:
        backbone = parse_backbone(text)
        validate_backbone(backbone)
        parsed.setdefault(backbone.label, backbone)
    return list(parsed.values())


DETERMINISTIC_SEED = 0  # the seed (and shots 0) of the single run of a method that trains nothing


LABEL_MARK_MAX = 40  # a longer preset-and-overrides mark is shown as the preset plus a hash (`RunSpec.variant`)


def variant_mark(spec: RunSpec, default: str) -> str:
    """How a label names a non-default configuration: `paper_ctxv1`, `epochs=2`, `paper_ctxv1, epochs=2, n_ctx=4`.

    Readable up to `LABEL_MARK_MAX` characters; past that, `preset+<hash of the overrides>` (`RunSpec.variant`),
    which the Markdown legend spells out.
    """
    parts = ([spec.preset] if spec.preset != default else []) + [f"{key}={value}" for key, value in spec.overrides]
    text = ", ".join(parts)
    return text if len(text) <= LABEL_MARK_MAX else spec.variant


def method_label(spec: RunSpec, profile: Profile, datasets: dict[str, Dataset], *, default: str, protocol: Any) -> str:
    """The method's name in leaderboards, marked with whatever departs from the profile's defaults.

    Leaderboards group runs by this label, so two configurations never share one: a non-default
    preset or overrides, another backbone, a shot count outside the protocol's defaults (unless the
    protocol reports per shot count, as few-shot does), or a split file that is not the
    public one each show up in brackets, e.g. `coop[paper_ctxv1, 8-shot]`; so does a checkpoint chosen
    on the test split (`bimors[best_test]`), on every profile.
    """
    marks = []
    if spec.preset != default or spec.overrides:
        marks.append(variant_mark(spec, default))
    on_test = str(spec.train_config.get("selection", "")).startswith("best_test")
    if on_test and METHODS.get(spec.method).requirements.trainable:
        marks.append("best_test")  # numbers from a checkpoint chosen on the test split: never unmarked
    if spec.backbone != profile.backbone:
        marks.append(spec.backbone)
    off_default = spec.shots not in protocol.default_shots and not protocol.shots_axis  # K is a few-shot axis
    if off_default and METHODS.get(spec.method).requirements.trainable:
        marks.append(f"{spec.shots}-shot")
    for name in (spec.dataset, *spec.targets):
        status = datasets[name].split_status
        if status in ("modified", "generated"):
            marks.append(f"{status} split of {name}")
    return f"{spec.method}[{', '.join(marks)}]" if marks else spec.method


def describe(plan: Plan, spec: RunSpec) -> dict[str, Any]:
    """The dry-run JSON object of one cell."""
    info = {
        "method": spec.method,
        "label": plan.labels[spec.run_key],
        "preset": spec.preset,
        "selection": spec.train_config.get("selection", "last")
        if METHODS.get(spec.method).requirements.trainable
        else "none",
        "protocol": spec.protocol,
        "dataset": spec.dataset,
        "seed": spec.seed,
        "shots": spec.shots,
        "profile": spec.profile,
        "backbone": spec.backbone,
        "run_key": spec.run_key,
    }
    info.update(plan.protocol.describe(spec, lambda name: plan.datasets[name]))
    info["method_config"] = spec.method_config
    info["train_config"] = spec.train_config
    return info
