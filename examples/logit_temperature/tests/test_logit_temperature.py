"""The plugin keeps the harness's method contract: the same checks every built-in method passes."""

import pytest

from benchmark.registry import METHODS
from benchmark.testing import CONTRACT, tiny_clip


def test_the_entry_point_registers_the_method():
    """The entry point's name is the registered name, and the package's version is known to the harness."""
    assert "logit_temperature" in METHODS.plugin_names()
    assert METHODS.distribution("logit_temperature") == "rs-bench-logit-temperature==0.1.0"


@pytest.mark.parametrize("check", CONTRACT, ids=lambda check: check.__name__)
def test_logit_temperature_keeps_the_contract(check):
    """Each check of `benchmark.testing.CONTRACT`, as every built-in method passes it."""
    check("logit_temperature", tiny_clip())
