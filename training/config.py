"""Config sections of the training stage: tokenizer, model, train, sample, eval."""

from webtext.section import Section


class TokenizerConfig(Section):
    pass


class ModelConfig(Section):
    pass


class TrainConfig(Section):
    pass


class SampleConfig(Section):
    pass


class EvalConfig(Section):
    pass
