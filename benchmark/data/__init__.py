"""Data layer: split files, few-shot sampling, transforms, dataset catalogs."""
