"""Built-in evaluation protocols, one file each (name -> module; see `benchmark.registry`)."""

BUILTIN = {
    "b2n": "protocols.b2n",
    "xd": "protocols.cross_dataset",
    "dg": "protocols.domain_gen",
}

ALIASES = {
    "base2new": "b2n",
    "cross-dataset": "xd",
    "cross_dataset": "xd",
    "domain-generalization": "dg",
    "domain_gen": "dg",
}
