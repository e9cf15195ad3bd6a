"""Model inputs from token Parquet: tasks (labels, weights, selection) and the streaming dataset."""

from .stream import INPUTS, TokenFiles, TokenStream, model_inputs, read_split
from .tasks import Task

__all__ = ["INPUTS", "TokenFiles", "TokenStream", "Task", "model_inputs", "read_split"]
