"""Config section `dedup`: exact and MinHash near-duplicate removal."""

from webtext.section import Section


class DedupConfig(Section):
    pass
