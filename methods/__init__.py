"""Built-in methods, one file each. Adding a method: a new file plus one line here.

The table maps registry names to modules; a module registers its class with
`@METHODS.register(name)` when imported, which happens only when the method is used, so listing
methods does not import torch.
"""

BUILTIN = {
    "zeroshot": "methods.zeroshot",
    "coop": "methods.coop",
    "bimors": "methods.bimors",
    "cocoop": "methods.cocoop",
    "maple": "methods.maple",
    "kgcoop": "methods.kgcoop",
    "taskres": "methods.taskres",
    "tip_adapter": "methods.tip_adapter",
    "clip_adapter": "methods.clip_adapter",
    "clip_lora": "methods.clip_lora",
    "linear_probe": "methods.linear_probe",
    "promptsrc": "methods.promptsrc",
    "applenet": "methods.applenet",
}
