"""Datasets. Every mixture dataset is a sequence of items with one shape:

``item = {"id": str, "sources": Tensor(n_sources, time), "mixture": Tensor(time)}``

and carries ``classes`` (source names in order), ``sample_rate``, ``manifest`` (a
``pandas.DataFrame``, one row per item) and ``manifest_hash``. The mixture always comes from
:func:`sepcore.mixing.mix`, so it follows the package's mixing convention.

Modules: ``toy`` (Frank's waveforms), ``slakh`` (Slakh2100 reader: ``SlakhMixtures``,
``SlakhStems``), ``render`` (the embedded Slakh-format dataset: ``ensure_dataset``), ``midi``
and ``corpus`` (what it plays), ``stats`` (its statistics), ``digits`` (images).
"""
