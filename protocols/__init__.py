"""Built-in evaluation protocols, one file each (name -> module; see `benchmark.registry`).

`xd` and `dg` are two instances of one source-to-targets protocol, registered by one module.
"""

BUILTIN = {
    "b2n": "protocols.b2n",
    "xd": "protocols.transfer",
    "dg": "protocols.transfer",
    "fewshot": "protocols.fewshot",
}

ALIASES = {
    "base2new": "b2n",
    "cross-dataset": "xd",
    "cross_dataset": "xd",
    "domain-generalization": "dg",
    "domain_gen": "dg",
    "few-shot": "fewshot",
    "few_shot": "fewshot",
}
