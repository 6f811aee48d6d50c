"""Config section `extract`: main-text extraction, language id and quality rules."""

from webtext.section import Section


class ExtractConfig(Section):
    pass
