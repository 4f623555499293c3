"""Training engine: state, step bodies, parallel modes, checkpoints and the loop."""

from jaxvision.train.checkpoint import CheckpointError, CheckpointMismatchError, Checkpointer
from jaxvision.train.config import default_config, validate_config
from jaxvision.train.evaluation import evaluate
from jaxvision.train.interrupt import Interrupted
from jaxvision.train.loop import NonFiniteError, load_state, train_and_evaluate
from jaxvision.train.parallel import Parallel, make_parallel
from jaxvision.train.state import TrainState, create_train_state
from jaxvision.train.step import StepOptions, make_eval_step, make_train_step
from jaxvision.train.workdir import ConfigChangedError, WorkdirBusyError
from jaxvision.train.writers import read_metrics

__all__ = [
    "CheckpointError", "CheckpointMismatchError", "Checkpointer", "ConfigChangedError",
    "Interrupted", "NonFiniteError", "Parallel", "StepOptions", "WorkdirBusyError", "evaluate",
    "TrainState", "create_train_state", "default_config", "load_state", "make_eval_step",
    "make_parallel", "make_train_step", "read_metrics", "train_and_evaluate", "validate_config",
]
