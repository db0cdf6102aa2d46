"""``WORLD_VERSION``: a digest of everything that decides the generated world's bytes.

Hashing the generator's own source (plus the library versions that encode PNGs and draw random numbers)
means any change to a recipe, style, split rule or caption template yields a new cache folder instead of
silently reusing a stale world. Pure standard library, so importing it stays cheap.
"""

from __future__ import annotations

import hashlib
from importlib import metadata
from pathlib import Path

#: Bump by hand for changes the digest cannot see (e.g. a new on-disk layout convention).
FORMAT = "v1"
#: Modules whose source decides the rendered scenes (shared by the datasets and the pretraining corpus).
SCENE_MODULES = (
    "primitives",
    "palette",
    "features",
    "scenes_land",
    "scenes_transport",
    "scenes_urban",
    "scenes",
    "styles",
    "captions",
    "render",
)
#: Modules that additionally decide the evaluation datasets' bytes.
GENERATOR_MODULES = (*SCENE_MODULES, "sensors", "datasets", "build")
#: Modules that additionally decide the pretraining corpus (not the evaluation sensors).
CORPUS_MODULES = (*SCENE_MODULES, "corpus")
#: Libraries whose version can change PNG bytes or random streams.
LIBRARIES = ("numpy", "pillow")
DIGEST_CHARS = 10


def _library_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def source_digest(modules: tuple[str, ...]) -> str:
    """Short sha256 over the source of ``modules`` (of this package) and the library versions."""
    h = hashlib.sha256()
    here = Path(__file__).parent
    for mod in modules:
        h.update(mod.encode())
        h.update((here / f"{mod}.py").read_bytes())
    for lib in LIBRARIES:
        h.update(f"{lib}={_library_version(lib)}".encode())
    return h.hexdigest()[:DIGEST_CHARS]


WORLD_VERSION = f"{FORMAT}-{source_digest(GENERATOR_MODULES)}"
