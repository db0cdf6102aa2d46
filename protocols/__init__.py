"""Built-in evaluation protocols, one file each (name -> module; see `benchmark.registry`)."""

BUILTIN = {
    "b2n": "protocols.b2n",
}

ALIASES = {
    "base2new": "b2n",
}
