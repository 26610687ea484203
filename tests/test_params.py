"""The params loader: every key validated once, one clear message per mistake."""
from dataclasses import dataclass, field
from typing import Literal

import pytest
import yaml

from lib.core.params import ParamsError, check, from_mapping, load_section, read_params


@dataclass
class Inner:
    width: int = 8


@dataclass
class Example:
    lr: float = 1e-3
    steps: int = 10
    name: str = "x"
    flag: bool = False
    mode: Literal["a", "b"] = "a"
    tags: list[str] = field(default_factory=list)
    inner: Inner = field(default_factory=Inner)
    maybe: int | None = None

    def __post_init__(self):
        check(self.steps > 0, "steps", "must be > 0")


def test_defaults_and_conversion():
    cfg = from_mapping(Example, {"lr": 1, "tags": ["a"], "inner": {"width": 4}, "maybe": 3}, "p: s")
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float)
    assert cfg.tags == ["a"] and cfg.inner.width == 4 and cfg.maybe == 3


def test_scientific_notation_string_is_a_float():
    # YAML 1.1 reads "3e-4" (no dot) as a string; it is still clearly a number
    assert from_mapping(Example, yaml.safe_load("lr: 3e-4"), "p: s").lr == pytest.approx(3e-4)


@pytest.mark.parametrize("data, fragment", [
    ({"learning_rate": 1}, "p: s.learning_rate: unknown key"),
    ({"lr": "fast"}, "p: s.lr: expected a number, got 'fast'"),
    ({"steps": 1.5}, "p: s.steps: expected an integer"),
    ({"steps": True}, "p: s.steps: expected an integer"),
    ({"flag": "yes"}, "p: s.flag: expected true or false"),
    ({"mode": "c"}, "p: s.mode: expected one of 'a', 'b'"),
    ({"tags": "a"}, "p: s.tags: expected a list of a string"),
    ({"tags": ["a", 2]}, "p: s.tags[1]: expected a string"),
    ({"inner": {"widht": 3}}, "p: s.inner.widht: unknown key; did you mean 'width'?"),
    ({"steps": 0}, "p: s.steps: must be > 0"),
])
def test_mistakes_name_the_key(data, fragment):
    with pytest.raises(ParamsError) as err:
        from_mapping(Example, data, "p: s")
    assert fragment in str(err.value)


def test_unknown_section_and_missing_file(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("seed: 1\npretrian: {}\n")
    with pytest.raises(ParamsError, match="pretrian: unknown key; did you mean 'pretrain'"):
        read_params(path)
    with pytest.raises(ParamsError, match="file not found"):
        read_params(tmp_path / "nope.yaml")


def test_invalid_yaml_names_the_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("seed: 1\npretrain:\n  lr: [1,\n")
    with pytest.raises(ParamsError, match="params.yaml: line"):
        read_params(path)


def test_missing_section(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("seed: 1\n")
    with pytest.raises(ParamsError, match="missing section 'pack'"):
        load_section("pack", Example, path)


def test_shipped_params_are_valid(repo_root):
    """Every section of the shipped params.yaml validates against its stage's dataclass."""
    from lib.clean.config import CleanParams
    from lib.corpus import CorpusParams
    from lib.eval.params import EvalParams
    from lib.data.pack import PackParams
    from lib.train.pretrain import PretrainParams
    from lib.scrape.config import ScrapeParams
    from lib.train.sft import SFTParams
    from lib.tokenizer.build import TokenizerParams

    path = repo_root / "params.yaml"
    for name, cls in [("scrape", ScrapeParams), ("clean", CleanParams), ("corpus", CorpusParams),
                      ("tokenizer", TokenizerParams), ("pack", PackParams), ("pretrain", PretrainParams),
                      ("sft", SFTParams), ("eval", EvalParams)]:
        load_section(name, cls, path)


def test_training_and_eval_gaps_name_the_key_and_the_values():
    """Mistakes that used to pass or blame the wrong key: each stops naming the key and the values."""
    from lib.eval.params import EvalParams
    from lib.train.sft import SFTParams

    with pytest.raises(ParamsError, match=r"sft\.min_lr: must be > 0 and <= lr; got min_lr 0\.01, lr 0\.001"):
        from_mapping(SFTParams, {"lr": 0.001, "min_lr": 0.01}, "params.yaml: sft")
    with pytest.raises(ParamsError, match=r"eval\.max_new_tokens: must be >= 1, got -5"):
        from_mapping(EvalParams, {"max_new_tokens": -5}, "params.yaml: eval")
    # SFT reads every shared training key, with the same checks as pretrain
    with pytest.raises(ParamsError, match=r"sft\.schedule: unknown schedule 'step' \(one of: cosine, linear, "):
        from_mapping(SFTParams, {"schedule": "step"}, "params.yaml: sft")
    assert from_mapping(SFTParams, {"early_stop_patience": 2}, "params.yaml: sft").early_stop_patience == 2
