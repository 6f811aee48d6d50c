"""Config section `build`: the dataset build pipeline, splits and Parquet shards."""

from webtext.section import Section


class BuildConfig(Section):
    pass
