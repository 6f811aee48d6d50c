"""Config section `overlap`: n-gram Bloom-filter contamination analysis (GPT-2 paper §4)."""

from webtext.section import Section


class OverlapConfig(Section):
    pass
