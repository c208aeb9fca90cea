"""The I/O-free parts of Dataset, Model and Evaluation, shared by both flavours.

``Object``, ``Model`` and ``Scorer`` hold data and ops but do no I/O, so one class
serves the async and the sync client (there is one ``weave_client.Model``):
a user's model works with either evaluation.
Their saved shape is weave's: ``{"_type": "MyModel", <fields>, "_class_name":
"MyModel", "_bases": ["Model", "Object", "BaseModel"]}``.

Also here: recognising ops of either flavour, and matching a dataset row to a
model's and a scorer's arguments the way weave's ``apply_model_async`` and
``preparer_scorer_op_args`` do.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import weakref
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from . import _serialize
from ._eval_summary import auto_summarize
from ._opbase import BoundTracedOp, TracedOp, trace_function
from ._tracing import sanitize_name

__all__ = [
    "INFER_METHOD_NAMES",
    "RUNNABLE_FEEDBACK_TYPE_PREFIX",
    "ApplyScorerResult",
    "ArgumentMismatchError",
    "Model",
    "Object",
    "Scorer",
    "as_op",
    "infer_method",
    "is_dataset",
    "is_op",
    "model_arguments",
    "op_function",
    "op_of",
    "register_object_ops",
    "runnable_feedback",
    "scorer_arguments",
    "scorer_name",
]

INFER_METHOD_NAMES = ("predict", "infer", "forward", "invoke")
"""The method names weave looks for on a Model, in this order."""


def register_object_ops(obj: Any, client: Any) -> None:
    """Register the ops of a pydantic model or dataclass with ``client`` (their saves are
    queued on its sender), so saving ``obj`` stores their refs, as weave does."""
    if not isinstance(obj, BaseModel) and not (
        dataclasses.is_dataclass(obj) and not isinstance(obj, type)
    ):
        return
    sender = getattr(client, "_sender", None)
    if sender is None:
        return
    for _, the_op in _serialize.class_ops(type(obj)):
        the_op._register(client, sender)


class ArgumentMismatchError(TypeError):
    """A dataset row does not fit a model's or scorer's arguments (a setup error:
    it stops the evaluation instead of failing every row)."""


# --- ops of either flavour ------------------------------------------------------


def is_op(value: Any) -> bool:
    """True for an ``AsyncOp``/``Op`` or one bound to an instance (``model.predict``)."""
    return isinstance(value, TracedOp | BoundTracedOp)


def op_of(value: Any) -> TracedOp:
    """The op itself, for an op or a bound op."""
    if isinstance(value, BoundTracedOp):
        return value.unbound()
    if isinstance(value, TracedOp):
        return value
    raise TypeError(f"expected an op (@async_op/@op), got {type(value).__name__}")


def op_function(value: Any) -> Callable[..., Any]:
    """The undecorated function of an op or bound op."""
    return op_of(value).resolve_fn


def is_async_function(fn: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn)


# Plain functions given as models or scorers, wrapped once (so each keeps one op,
# saved once per version, however many evaluations use it).
_wrapped: weakref.WeakKeyDictionary[Callable[..., Any], Any] = weakref.WeakKeyDictionary()


def as_op(fn: Any, what: str = "function") -> Any:
    """``fn`` as an op: ops and bound ops as they are; a coroutine function under
    ``async_op``, a plain function under ``op`` (weave requires ops; we trace
    plain functions for the user instead of refusing them)."""
    if is_op(fn):
        return fn
    if not callable(fn) or isinstance(fn, type):
        raise TypeError(f"{what} must be a function or an op, got {fn!r}")
    wrapped = _wrapped.get(fn)
    if wrapped is None:
        wrapped = trace_function(fn)
        try:
            _wrapped[fn] = wrapped
        except TypeError:  # not weak-referenceable (a callable instance of a C type)
            pass
    return wrapped


_params_cache: weakref.WeakKeyDictionary[Any, list[inspect.Parameter]] = weakref.WeakKeyDictionary()


def _parameters(value: Any) -> list[inspect.Parameter]:
    """The op's parameters without ``self`` (cached per op: this runs for every row)."""
    the_op = op_of(value)
    params = _params_cache.get(the_op)
    if params is None:
        signature = inspect.signature(the_op.resolve_fn)
        params = [p for p in signature.parameters.values() if p.name != "self"]
        _params_cache[the_op] = params
    return params


def is_dataset(value: Any) -> bool:
    """True for a ``Dataset`` of either flavour (each sets ``_is_dataset``)."""
    return isinstance(value, Object) and getattr(type(value), "_is_dataset", False)


# --- objects ---------------------------------------------------------------------


class Object(BaseModel):
    """Base class for versioned user objects (pydantic), saved as weave saves them.

    ``name`` and ``description`` are optional; methods decorated with
    ``@async_op``/``@op`` are versioned with the class's code. Saving a changed
    object makes a new version; identical content keeps the digest.
    """

    name: str | None = None
    description: str | None = None

    model_config = ConfigDict(
        ignored_types=(TracedOp,),
        arbitrary_types_allowed=True,
        protected_namespaces=(),
        extra="forbid",
        populate_by_name=True,
    )

    # Methods traced even when the user did not decorate them (weave requires the
    # decorator and fails at evaluation time; tracing them is friendlier).
    _auto_op_methods: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if cls.__module__ == __name__:
            return  # Model and Scorer themselves: their subclasses get the ops
        for name in cls._auto_op_methods:
            fn = getattr(cls, name, None)
            if inspect.isfunction(fn):
                # One op per function: an inherited method (Scorer.summarize) is
                # the same op in every subclass.
                wrapped = _auto_ops.get(fn)
                if wrapped is None:
                    wrapped = _auto_ops[fn] = trace_function(fn)
                setattr(cls, name, wrapped)


_auto_ops: weakref.WeakKeyDictionary[Callable[..., Any], TracedOp] = weakref.WeakKeyDictionary()


class Model(Object):
    """A model: fields (versioned with its content) plus a traced ``predict``.

    Define ``predict`` (or ``infer``/``forward``/``invoke``), async or sync; it is
    traced as an op whose ``self`` input is the model's ref once saved (an
    evaluation saves the model first). Example::

        class Echo(weave_client.Model):
            prefix: str

            @weave_client.async_op
            async def predict(self, question: str) -> str:
                return self.prefix + question
    """

    _auto_op_methods: ClassVar[tuple[str, ...]] = INFER_METHOD_NAMES

    def get_infer_method(self) -> Any:
        """The bound predict op (first of ``predict``, ``infer``, ``forward``, ``invoke``)."""
        return infer_method(self)


def infer_method(model: Any) -> Any:
    """A model object's bound inference op; ``TypeError`` naming what is wrong."""
    for name in INFER_METHOD_NAMES:
        method = getattr(model, name, None)
        if method is None:
            continue
        if not is_op(method):
            raise TypeError(
                f"{type(model).__name__}.{name} must be traced: decorate it with "
                "@async_op (async def) or @op (def)"
            )
        return method
    raise TypeError(
        f"{type(model).__name__} has no inference method: define one of "
        f"{', '.join(INFER_METHOD_NAMES)}"
    )


def model_arguments(
    predict: Any, model_input: Mapping[str, Any], row: Mapping[str, Any]
) -> dict[str, Any]:
    """The row's values for the predict op's parameters, matched by name (as weave)."""
    params = _parameters(predict)
    names = {p.name for p in params}
    args = {k: v for k, v in model_input.items() if k in names}
    missing = [
        p.name
        for p in params
        if p.default is inspect.Parameter.empty
        and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        and p.name not in args
    ]
    if missing:
        name = op_of(predict).name
        raise ArgumentMismatchError(
            f"{name} needs {', '.join(map(repr, missing))} but the dataset row has columns "
            f"{_columns(row)}: rename the predict arguments or the columns, or pass "
            "Evaluation(preprocess_model_input=...) to map a row to predict's arguments"
        )
    return args


# --- scorers ---------------------------------------------------------------------


class Scorer(Object):
    """A class-based scorer: ``score`` (required, async or sync) and ``summarize``.

    ``score`` takes the model's ``output`` plus the row columns it names (matched
    by name, or through ``column_map = {score_argument: dataset_column}``);
    ``summarize(score_rows)`` turns the list of scores into the summary entry
    (default: weave's auto summary: means, true counts and fractions).
    """

    column_map: dict[str, str] | None = Field(
        default=None,
        description="score argument name -> dataset column name, for columns named differently",
    )

    _auto_op_methods: ClassVar[tuple[str, ...]] = ("score", "summarize")

    def model_post_init(self, context: Any) -> None:
        super().model_post_init(context)
        score = getattr(self, "score", None)
        if not is_op(score):
            raise TypeError(f"{type(self).__name__} must define a score method")
        names = {p.name for p in _parameters(score)}
        if "output" in names and "model_output" in names:
            raise ValueError(
                f"{type(self).__name__}.score takes both 'output' and 'model_output'; "
                "rename one (prefer 'output' for the model's output)"
            )

    def score(self, *, output: Any, **kwargs: Any) -> Any:
        """Score one row: ``output`` is the model's, the rest are row columns by name."""
        raise NotImplementedError(f"{type(self).__name__} must implement score()")

    def summarize(self, score_rows: list[Any]) -> dict[str, Any] | None:
        """weave's auto summary of the score column."""
        return auto_summarize(score_rows)


def scorer_name(scorer: Any) -> str:
    """The key of a scorer's results: its ``name``, else its class name; an op's name."""
    if isinstance(scorer, Scorer) or (not is_op(scorer) and hasattr(scorer, "score")):
        name = getattr(scorer, "name", None) or type(scorer).__name__
    else:
        name = op_of(scorer).name
    return sanitize_name(str(name))


def score_op(scorer: Any) -> Any:
    """The (bound) score op of a scorer."""
    if is_op(scorer):
        return scorer
    method = getattr(scorer, "score", None)
    if not is_op(method):
        raise TypeError(f"scorer {scorer!r} has no traced score method")
    return method


def scorer_arguments(
    scorer: Any, row: Mapping[str, Any], output: Any
) -> dict[str, Any]:
    """The arguments of ``scorer``'s score op for one row, as weave matches them.

    Columns whose names are score parameters are passed; with a ``column_map``
    each parameter is looked up in the row under its mapped name; a ``**kwargs``
    scorer gets every column plus ``inputs`` (the whole row); the model's output
    goes to ``output`` (or the older ``model_output``).
    """
    name = scorer_name(scorer)
    fn = score_op(scorer)
    params = _parameters(fn)
    names = [p.name for p in params]
    var_keyword = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    column_map = getattr(scorer, "column_map", None) if not is_op(scorer) else None
    args: dict[str, Any] = {}
    if column_map is not None:
        for key in column_map:
            if key not in names:
                raise ArgumentMismatchError(
                    f"{name}: column_map key {key!r} is not an argument of score() "
                    f"(its arguments: {names})"
                )
        for arg in names:
            if arg in ("output", "model_output", "kwargs"):
                continue
            if arg in row:
                args[arg] = row[arg]
            elif arg in column_map:
                column = column_map[arg]
                if column not in row:
                    raise ArgumentMismatchError(
                        f"{name}: column_map maps {arg!r} to column {column!r}, which the "
                        f"row does not have (columns: {_columns(row)})"
                    )
                args[arg] = row[column]
            else:
                p = next(p for p in params if p.name == arg)
                if p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                    continue
                if p.default is not inspect.Parameter.empty:
                    continue
                raise ArgumentMismatchError(
                    f"{name}: score argument {arg!r} is neither a row column nor mapped in "
                    f"column_map {column_map} (columns: {_columns(row)})"
                )
    else:
        args = {k: v for k, v in row.items() if var_keyword or k in names}
        if var_keyword and "inputs" not in args:
            args["inputs"] = dict(row)
    if "output" in names:
        args["output"] = output
    elif "model_output" in names:
        args["model_output"] = output
    else:
        raise ArgumentMismatchError(
            f"scorer {name} must take an 'output' argument (the model's output)"
        )
    return args


def _columns(row: Mapping[str, Any]) -> str:
    keys = list(row)
    shown = ", ".join(map(repr, keys[:10]))
    return f"[{shown}{', ...' if len(keys) > 10 else ''}]"


# --- scores as feedback (weave's _send_score_call / _add_runnable_feedback) ---------------

RUNNABLE_FEEDBACK_TYPE_PREFIX = "wandb.runnable"
"""Feedback type prefix of a scorer's result on the call it scored."""


class ApplyScorerResult(NamedTuple):
    """What ``call.apply_scorer(scorer)`` returns: the score and the scorer's call.

    Unpacks as ``result, score_call = await call.apply_scorer(scorer)``.
    ``score_call`` is None when the scorer ran untraced.
    """

    result: Any
    score_call: Any


@functools.lru_cache(maxsize=256)
def runnable_feedback(scorer_ref: str | None, score_op_name: str) -> tuple[str, str]:
    """``(feedback_type, runnable_ref)`` of a score, as weave records it.

    The runnable is the saved ``Scorer`` object when there is one (``scorer_ref``),
    else the score op (its ref URI, the score call's ``op_name``); the type is
    ``wandb.runnable.<its name>``.
    """
    from ._refs import ObjectRef, parse_ref

    runnable_ref = scorer_ref or score_op_name
    ref = parse_ref(runnable_ref)
    if not isinstance(ref, ObjectRef):  # OpRef is an ObjectRef of kind op
        raise TypeError(f"a scorer's runnable ref must be an op or object ref, got {runnable_ref!r}")
    return f"{RUNNABLE_FEEDBACK_TYPE_PREFIX}.{ref.name}", runnable_ref
