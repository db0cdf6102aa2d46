import subprocess
import sys

import pytest

from benchmark.errors import UsageError
from benchmark.registry import METHODS, PROTOCOLS, Registry


def test_duplicate_names_are_rejected():
    reg = Registry("thing")
    reg.register("alpha")(object())
    with pytest.raises(KeyError, match="already registered"):
        reg.register("alpha")(object())


def test_names_must_be_lower_snake():
    with pytest.raises(ValueError):
        Registry("thing").register("CoOp")


def test_unknown_name_suggests_the_closest():
    with pytest.raises(UsageError) as err:
        METHODS.canonical("cop")
    message = str(err.value)
    assert "'cop'" in message and "did you mean 'coop'" in message
    assert "\n" not in message


def test_protocol_aliases_resolve():
    assert PROTOCOLS.canonical("base2new") == "b2n"
    assert PROTOCOLS.get("base2new") is PROTOCOLS.get("b2n")


def test_builtin_methods_are_registered_under_their_names():
    for name in ("zeroshot", "coop"):
        cls = METHODS.get(name)
        assert cls.presets, name
        for preset in cls.default_presets.values():
            assert preset in cls.presets


def test_module_must_register_what_its_table_claims(tmp_path, monkeypatch):
    (tmp_path / "fake_methods_mod.py").write_text("x = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = Registry("method", builtin={"fake": "fake_methods_mod"})
    with pytest.raises(KeyError, match="did not register"):
        reg.get("fake")


def test_entry_point_methods_join_and_cannot_shadow_builtins(monkeypatch):
    import benchmark.registry as registry

    class EP:
        def __init__(self, name, value):
            self.name, self.value = name, value

    monkeypatch.setattr(registry, "entry_points", lambda group: [EP("third_party", "pkg.mod:Cls")])
    reg = Registry("method", builtin={"coop": "methods.coop"}, entry_point_group="g")
    assert reg.names() == ["coop", "third_party"]
    monkeypatch.setattr(registry, "entry_points", lambda group: [EP("coop", "pkg.mod")])
    with pytest.raises(KeyError, match="clashes"):
        Registry("method", builtin={"coop": "methods.coop"}, entry_point_group="g").names()


def test_methods_all_is_the_built_ins_and_plugins_the_installed_ones(monkeypatch):
    """Installing a plugin does not change `--methods all` (the default sweep); `plugins` selects it."""
    from importlib.metadata import Distribution

    import benchmark.plan.sweep as sweep
    import benchmark.registry as registry

    class EP:
        name, value = "third_party", "pkg.mod"
        dist = type("Dist", (Distribution,), {"name": "third-party-pkg", "version": "1.2.0"})()

    monkeypatch.setattr(registry, "entry_points", lambda group: [EP()])
    builtin = {"coop": "methods.coop", "zeroshot": "methods.zeroshot"}
    methods = Registry("method", builtin=builtin, entry_point_group="g")
    monkeypatch.setattr(sweep, "METHODS", methods)
    assert sweep.method_names(["all"]) == ["coop", "zeroshot"]
    assert sweep.method_names(["plugins"]) == ["third_party"]
    assert sweep.method_names(["all", "plugins"]) == ["coop", "zeroshot", "third_party"]
    assert methods.distribution("third_party") == "third-party-pkg==1.2.0" and methods.distribution("coop") is None


def test_list_works_without_importing_torch():
    code = (
        "import sys; from benchmark.cli.main import main; rc = main(['list']); "
        "assert 'torch' not in sys.modules, 'torch imported'; sys.exit(rc)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "coop" in done.stdout and "b2n" in done.stdout and "patternnet" in done.stdout
