"""What an evaluation is given, checked and shaped I/O-free, shared by both flavours.

Its scorers (ops, functions or ``Scorer`` instances, uniquely named), the model it
runs (a ``Model`` or an op; a plain function is traced), a dataset of the other
flavour or a stored one (as the fields of this flavour's ``Dataset``), and the
display name of its ``evaluate`` call.
"""

from __future__ import annotations

import datetime
import random
from typing import Any

from ._flow import Object, as_op, infer_method, is_dataset, is_op, score_op, scorer_name
from ._serialize import WeaveObject

__all__ = [
    "as_model",
    "check_scorers",
    "dataset_fields",
    "default_display_name",
    "predict_op",
    "scorer_plan",
]

_ADJECTIVES = ("brave", "bright", "calm", "clever", "eager", "gentle", "happy", "keen", "lively", "quick")
_NOUNS = ("otter", "falcon", "maple", "comet", "harbor", "meadow", "quartz", "river", "summit", "willow")


def default_display_name(inputs: dict[str, Any]) -> str:
    """``eval-2025-01-31-brave-otter`` (weave's default), or ``evaluation_name`` if set."""
    evaluation = inputs.get("self")
    name = getattr(evaluation, "evaluation_name", None)
    if isinstance(name, str) and name:
        return name
    date = datetime.datetime.now().strftime("%Y-%m-%d")
    return f"eval-{date}-{random.choice(_ADJECTIVES)}-{random.choice(_NOUNS)}"


def dataset_fields(value: Any) -> dict[str, Any] | None:
    """The ``Dataset`` fields (name, description, rows) of the other flavour's Dataset
    (rows kept as given) or of a stored one read back; None for anything else."""
    if is_dataset(value):
        local = getattr(value, "_local_rows", None)
        return {
            "name": value.name,
            "description": value.description,
            "rows": local if local is not None else value.__dict__["rows"],
        }
    if isinstance(value, WeaveObject) and value._class_name == "Dataset":
        fields = value._asdict()
        return {
            "name": fields.get("name"),
            "description": fields.get("description"),
            "rows": fields["rows"],
        }
    return None


def check_scorers(value: Any) -> list[Any] | None:
    """The scorers as an evaluation holds them: ``Scorer`` instances as given, functions
    as ops; a class, a scorer without a score op or a duplicate name raises."""
    if value is None:
        return None
    if not isinstance(value, list | tuple):
        raise TypeError(f"Evaluation scorers must be a list, got {type(value).__name__}")
    out = []
    for i, scorer in enumerate(value):
        if isinstance(scorer, type):
            raise TypeError(
                f"scorers[{i}] is the class {scorer.__name__}; pass an instance: {scorer.__name__}()"
            )
        if isinstance(scorer, Object):
            score_op(scorer)  # raises naming the scorer if it has no score op
            out.append(scorer)
        else:
            out.append(as_op(scorer, what=f"scorers[{i}]"))
    names = [scorer_name(s) for s in out]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"Evaluation scorers have duplicate names: {duplicates}")
    return out


def scorer_plan(scorers: list[Any] | None) -> list[tuple[Any, str, Any]]:
    """``(scorer, result key, score op)`` of each scorer (worked out once per run)."""
    return [(s, scorer_name(s), score_op(s)) for s in scorers or ()]


def as_model(model: Any, decorator: str) -> Any:
    """What ``evaluate`` runs: a ``Model`` (or anything with ``predict``) or an op as
    given, a plain function as an op; anything else raises naming it (and
    ``decorator``, the flavour's op decorator)."""
    if is_op(model):
        return model
    if isinstance(model, Object) or hasattr(model, "predict"):
        infer_method(model)  # raises naming what is missing
        return model
    if callable(model) and not isinstance(model, type):
        return as_op(model, what="model")
    raise TypeError(
        f"evaluate() takes a Model or an op (a function decorated with {decorator}), got {model!r}"
    )


def predict_op(model: Any) -> Any:
    """The op that predicts: the model itself if an op, else its predict method."""
    return model if is_op(model) else infer_method(model)
