"""``AsyncDataset``: rows to evaluate on, stored as a table and versioned as an object.

Saved as weave saves a Dataset: the rows go up as a table, and the object
``{"_type": "Dataset", "name": ..., "description": ..., "rows": "weave:///e/p/table/<digest>",
"_class_name": "Dataset", "_bases": ["Object", "BaseModel"]}`` refers to it.
A dataset read back from the server streams its rows lazily from that table.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import PrivateAttr, field_validator

from .._context import current_client
from .._flow import Object
from .._refs import ObjectRef, TableRef, parse_ref
from .._serialize import WeaveObject, encode_for_save
from ._table import AsyncTable

if TYPE_CHECKING:
    from ._call import AsyncCall
    from ._client import AsyncWeaveClient

__all__ = ["AsyncDataset"]


class AsyncDataset(Object):
    """A named, versioned list of dict rows.

    ``AsyncDataset(name="qa", rows=[{"question": ..., "expected": ...}, ...])``; save it
    with ``client.save(dataset, "qa")`` (or let an evaluation save it). Iterate
    over its rows, ``count()`` them, read one with ``dataset[i]`` (awaited in the
    async flavour). ``AsyncDataset.get(client, ref)`` reads a saved one back, its rows
    streamed from the server a page at a time.

    ``rows`` holds the rows given; once saved (or when read back) it holds the
    ``TableRef`` of the stored table, which is what the saved object refers to.
    """

    # Saved under weave's class name, whatever this flavour calls it.
    _weave_class_name: ClassVar[str] = "Dataset"

    # What the shared layer checks to recognise a Dataset of either flavour.
    _is_dataset: ClassVar[bool] = True

    rows: Any

    # The rows as given (kept after saving, so iteration needs no round trip).
    _local_rows: list[dict[str, Any]] | None = PrivateAttr(default=None)
    # The stored table, for a dataset read back from the server.
    _table: AsyncTable | None = PrivateAttr(default=None)

    @field_validator("rows", mode="before")
    @classmethod
    def _check_rows(cls, rows: Any) -> Any:
        if isinstance(rows, TableRef | AsyncTable):
            return rows
        if isinstance(rows, str):
            if rows.startswith("weave:///"):
                ref = parse_ref(rows)
                if isinstance(ref, TableRef):
                    return ref
            raise TypeError(f"Dataset rows must be a list of dicts or a table ref, got {rows!r}")
        if isinstance(rows, Mapping | bytes) or not isinstance(rows, Iterable):
            raise TypeError(
                f"Dataset rows must be a list of dicts, got {type(rows).__name__}"
            )
        out: list[dict[str, Any]] = []
        for i, row in enumerate(rows):
            if isinstance(row, WeaveObject):
                row = row._asdict()
            if not isinstance(row, Mapping):
                raise TypeError(
                    f"Dataset rows must be dicts: rows[{i}] is a {type(row).__name__} ({row!r:.80})"
                )
            if not row:
                raise ValueError(f"Dataset rows must not be empty: rows[{i}] is {{}}")
            out.append(dict(row))
        if not out:
            raise ValueError("a Dataset needs at least one row")
        return out

    def model_post_init(self, context: Any) -> None:
        super().model_post_init(context)
        rows = self.rows
        if isinstance(rows, list):
            self._local_rows = rows
        elif isinstance(rows, AsyncTable):
            self._table = rows
            self.rows = rows.table_ref

    def __repr__(self) -> str:
        where = (
            f"{len(self._local_rows)} rows"
            if self._local_rows is not None
            else f"rows={self.rows.uri() if isinstance(self.rows, TableRef) else self.rows!r}"
        )
        return f"{type(self).__name__}(name={self.name!r}, {where})"

    __str__ = __repr__

    # --- saving (I/O-free hooks used by whoever saves the dataset) -----------------

    def _weave_table_rows(self, project_id: str) -> list[dict[str, Any]] | None:
        """Rows to store as a table before this dataset is saved in ``project_id``."""
        if isinstance(self.rows, TableRef) and self.rows.project_id == project_id:
            return None
        return self._local_rows

    def _weave_table_saved(self, table_ref: TableRef) -> None:
        """Point the saved form at the stored table (the rows stay available locally)."""
        self.rows = table_ref

    # --- reading ----------------------------------------------------------------

    def _stored_table(self) -> AsyncTable:
        if self._table is not None:
            return self._table
        if not isinstance(self.rows, TableRef):
            raise TypeError(f"Dataset rows are neither local nor a table: {self.rows!r}")
        client = current_client()
        if client is None:
            raise RuntimeError(
                f"Dataset {self.name!r} refers to the stored table {self.rows.uri()}; "
                "read it inside the client's `with` block or with Dataset.get(client, ref)"
            )
        self._table = client._tables.handle(self.rows)
        return self._table

    async def _iter_rows(self) -> AsyncIterator[dict[str, Any]]:
        if self._local_rows is not None:
            for row in self._local_rows:
                yield row
            return
        async for row in self._stored_table():
            yield row if isinstance(row, dict) else dict(row)

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:  # type: ignore[override,unused-ignore]
        """Iterate over the rows (a stored dataset's are fetched a page at a time)."""
        return self._iter_rows()

    async def count(self) -> int:
        """The number of rows."""
        if self._local_rows is not None:
            return len(self._local_rows)
        return await self._stored_table().count()

    async def __getitem__(self, index: int) -> dict[str, Any]:
        """The row at ``index`` (negative counts from the end); ``IndexError`` if out of range."""
        if self._local_rows is not None:
            if not isinstance(index, int) or isinstance(index, bool):
                raise TypeError(f"dataset index must be an int, got {type(index).__name__}")
            try:
                return self._local_rows[index]
            except IndexError:
                raise IndexError(
                    f"dataset index {index} out of range ({len(self._local_rows)} rows)"
                ) from None
        row = await self._stored_table()[index]
        return row if isinstance(row, dict) else dict(row)

    async def to_list(self) -> list[dict[str, Any]]:
        """Every row, in order, as a list."""
        return [row async for row in self]

    async def add_rows(self, rows: Iterable[Mapping[str, Any]]) -> AsyncDataset:
        """Save a new version of this saved dataset with ``rows`` appended; return it.

        Only the new rows are sent (appended to the stored table); the new version is
        saved under the same name, so ``client.get`` of that name returns it. Needs a
        current client, in which this dataset was saved (or from which it was read).
        """
        new_rows = self._check_rows(rows)
        client = current_client()
        ref = client._saved.ref_of(self) if client is not None else None
        if client is None or not isinstance(ref, ObjectRef) or not isinstance(self.rows, TableRef):
            raise TypeError(
                f"add_rows() needs a saved dataset and its client: save {self!r} with "
                "client.save(dataset, name) inside the client's `with` block first"
            )
        table_ref = await client._tables.append(self.rows, new_rows)
        added = AsyncDataset(name=self.name, description=self.description, rows=client._tables.handle(table_ref))
        await client.save(added, ref.name)
        return added

    # --- constructors -------------------------------------------------------------

    @classmethod
    def from_calls(cls, calls: Iterable[AsyncCall], name: str | None = None) -> AsyncDataset:
        """A dataset with one row per traced call (its fields, as ``AsyncCall.to_dict()``)."""
        return cls(name=name, rows=[call.to_dict() for call in calls])

    @classmethod
    async def get(cls, client: AsyncWeaveClient, ref: ObjectRef | str) -> AsyncDataset:
        """Read a saved dataset (as ``client.get(ref)`` does); its rows stream from
        the server when iterated."""
        value = await client.get(ref)
        return cls.from_stored(value, client)

    @classmethod
    def from_stored(
        cls, value: Any, client: AsyncWeaveClient, ref: ObjectRef | None = None
    ) -> AsyncDataset:
        """A Dataset from the value ``client.get`` decoded for a saved dataset."""
        if isinstance(value, AsyncDataset):
            return value
        class_name = getattr(value, "_class_name", None)
        if class_name != "Dataset" and "Dataset" not in (getattr(value, "_bases", None) or ()):
            raise TypeError(f"not a saved Dataset: {value!r:.120}")
        rows = value.rows
        if isinstance(rows, TableRef):
            rows = client._tables.handle(rows)
        elif isinstance(rows, AsyncTable):
            pass
        dataset = cls(
            name=getattr(value, "name", None),
            description=getattr(value, "description", None),
            rows=rows,
        )
        if ref is not None and not ref.extra:
            # So saving it again, or passing it to an op, uses this ref.
            client._saved.remember(
                dataset, ref, encode_for_save(dataset, ref_of=client._saved.ref_of).digest
            )
        return dataset

