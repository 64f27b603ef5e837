r"""One training engine for every model: loop, evaluation, checkpoints,
resume, and the recipes that assemble each model with its data."""
from .checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_model_state,
    save_checkpoint,
    seed_everything,
)
from .settings import Recipe, Setting, SettingError
from .trainer import Trainer
from .recipes import RECIPES, Experiment, register
from .runner import load_run, run

__all__ = [
    'Trainer',
    'Experiment',
    'Recipe',
    'Setting',
    'SettingError',
    'RECIPES',
    'register',
    'run',
    'load_run',
    'CheckpointError',
    'save_checkpoint',
    'load_checkpoint',
    'load_model_state',
    'seed_everything',
]
