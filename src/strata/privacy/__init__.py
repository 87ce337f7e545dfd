"""Data rights and retention: erasure, access, consent, suppression, event retention.

* :mod:`strata.privacy.subjects`: identifiers, keyed hashes, the suppression list;
* :mod:`strata.privacy.rights`: erasure and access requests, consent;
* :mod:`strata.privacy.retention`: deleting events older than a workspace keeps them.

See ``docs/privacy.md``.
"""
