"""Options declared once and shared by commands: a placeholder parameter in a command's
signature (``run``, ``params``) stands for a group of options, which Typer then sees in its
place."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable


def expand(command: Callable, placeholder: str, options: list[inspect.Parameter],
           collect: Callable[[dict], object]) -> Callable:
    """``command`` with ``options`` in place of its parameter ``placeholder``.

    The wrapper takes the options' values out of the keyword arguments and passes
    ``collect({name: value})`` as ``placeholder`` instead.
    """
    signature = inspect.signature(command, eval_str=True)
    names = [p.name for p in options]
    parameters = []
    for p in signature.parameters.values():
        if p.name == placeholder:
            parameters += options
        else:  # keyword-only: Typer passes every value by name, in any order
            parameters.append(p.replace(kind=inspect.Parameter.KEYWORD_ONLY))

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        values = {name: kwargs.pop(name) for name in names}
        return command(*args, **{placeholder: collect(values)}, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=parameters)
    wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
    return wrapper


def option(name: str, annotation, default) -> inspect.Parameter:
    """A keyword-only parameter for :func:`expand`."""
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                             annotation=annotation)
