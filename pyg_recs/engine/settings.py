r"""Recipe settings: what a model's recipe accepts, with its type, default
and help, so that the command line, the run folders and the benchmarks
all read one description of every model."""
import argparse
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Tuple


def positive_int(text: str) -> int:
    r"""An argparse type: an integer of at least 1 (a count of epochs,
    examples, channels, ...), so that 0 or -1000 is refused up front
    instead of giving an untrained model or a silently trimmed split."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer (got '{text}')") from None
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer (got {value})")
    return value


def non_negative_int(text: str) -> int:
    r"""An argparse type: an integer of at least 0 (0 often means never)."""
    value = positive_int(text) if text.strip() not in ('0', '+0', '-0') \
        else 0
    return value


def positive_float(text: str) -> float:
    r"""An argparse type: a finite number above 0 (a learning rate or a
    decay factor)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive number (got '{text}')") from None
    if not 0.0 < value < float('inf'):
        raise argparse.ArgumentTypeError(
            f"expected a positive number (got {value})")
    return value


def non_negative_float(text: str) -> float:
    r"""An argparse type: a finite number of at least 0 (a penalty)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number >= 0 (got '{text}')") from None
    if not 0.0 <= value < float('inf'):
        raise argparse.ArgumentTypeError(
            f"expected a number >= 0 (got {value})")
    return value


def unit_float(text: str) -> float:
    r"""An argparse type: a number in :math:`[0, 1]` (a share or a
    dropout rate)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number in [0, 1] (got '{text}')") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(
            f"expected a number in [0, 1] (got {value})")
    return value


@dataclass(frozen=True)
class Setting:
    r"""One setting of a recipe.

    Args:
        type (callable): Parses the command-line text (an argparse type);
            :obj:`bool` makes a switch.
        default (any): The value the command line passes when the flag is
            absent; :obj:`None` passes nothing, so the recipe's own default
            applies.
        help (str): One line for :obj:`--help`.
        choices (tuple, optional): The allowed values.
        flag (str, optional): The flag, if not :obj:`--<name>`.
        switch_value (bool): The value a switch sets. (default: :obj:`True`)
    """
    type: Callable[[str], Any] = str
    default: Any = None
    help: str = ''
    choices: Optional[Tuple[Any, ...]] = None
    flag: Optional[str] = None
    switch_value: bool = True

    def add_to(self, parser: argparse.ArgumentParser, name: str) -> None:
        r"""Adds this setting's flag to an argparse parser."""
        flag = self.flag or '--' + name.replace('_', '-')
        if self.type is bool:
            parser.add_argument(
                flag, dest=name, default=self.default,
                action='store_true' if self.switch_value else 'store_false',
                help=self.help)
            return
        parser.add_argument(flag, dest=name, type=self.type,
                            default=self.default, choices=self.choices,
                            help=self.help + ('' if self.default is None
                                              else f' (default: '
                                              f'{self.default})'))


#: The trainer's settings and where a recipe gives none of its own.
TRAINER_DEFAULTS: Dict[str, Any] = dict(
    epochs=30, lr=1e-3, weight_decay=1e-5, lr_step=3, lr_gamma=0.1,
    patience=10)


#: How the trainer settings of :func:`~pyg_recs.engine.run` are checked.
TRAINER_TYPES: Dict[str, Callable[[str], Any]] = dict(
    epochs=positive_int, lr=positive_float, weight_decay=non_negative_float,
    lr_step=non_negative_int, lr_gamma=positive_float,
    patience=non_negative_int)


class SettingError(ValueError):
    r"""A setting that the recipe does not know, or a value it refuses."""


def check_value(name: str, value: Any, parse: Callable[[str], Any],
                choices: Optional[tuple] = None) -> None:
    r"""Raises :class:`SettingError` unless :obj:`value` passes the same
    check as on the command line (:obj:`parse`, an argparse type, and
    :obj:`choices`), so that a value given from Python or read from a
    :obj:`config.json` is held to the command line's rules."""
    if value is not None and parse not in (bool, str):
        try:  # str(2.5), str(True) fail an integer type as on the CLI.
            parse(str(value))
        except (argparse.ArgumentTypeError, ValueError, TypeError) as e:
            raise SettingError(
                f"Invalid setting {name}={value!r}: {e}") from None
    if choices is not None and value is not None and value not in choices:
        raise SettingError(f"Invalid setting {name}={value!r}: choose "
                           f"from {list(choices)}")


@dataclass
class Recipe:
    r"""How one model is assembled from a dataset: a builder returning an
    :class:`~pyg_recs.engine.recipes.Experiment`, the settings it accepts
    (from which the command line is generated), and the trainer settings
    that suit the model.

    Calling a recipe calls its builder, after refusing settings it does not
    know (a mistyped setting is an error, not silently ignored)."""
    name: str
    build: Callable[..., Any]
    settings: Dict[str, Setting] = field(default_factory=dict)
    trainer: Dict[str, Any] = field(default_factory=dict)
    description: str = ''
    #: The model's name in tables and charts (default: :attr:`name`).
    label: str = ''
    #: Keyword arguments the engine itself passes, beyond the settings.
    internal: Tuple[str, ...] = ('device', 'generator')

    def __post_init__(self):
        self.label = self.label or self.name

    def check(self, settings: Dict[str, Any]) -> None:
        r"""Raises :class:`SettingError` for a setting this recipe does
        not know (a recipe registered without settings takes any)."""
        unknown = [k for k in settings
                   if k not in self.settings and k not in self.internal]
        if unknown and self.settings:
            raise SettingError(
                f"Unknown setting(s) {sorted(unknown)} for the "
                f"'{self.name}' recipe; it takes {sorted(self.settings)}")
        for key, value in settings.items():
            setting = self.settings.get(key)
            if setting is not None:
                check_value(key, value, setting.type, setting.choices)

    def __call__(self, **kwargs):
        self.check(kwargs)
        return self.build(**kwargs)

    def trainer_defaults(self) -> Dict[str, Any]:
        r"""The trainer settings of this model, completed with
        :data:`TRAINER_DEFAULTS`."""
        return {**TRAINER_DEFAULTS, **self.trainer}
