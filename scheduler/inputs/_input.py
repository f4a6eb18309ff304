"""The input side of a run: find the files, fingerprint them, cut them into shards, read rows.

``open_input(recipe.input, resolve_input_path(recipe))`` accepts one file, a glob, or a
directory (all files of the format under it, recursively, in sorted order; names starting
with ``.`` or ``_`` are skipped), as a local path or an fsspec URL (``s3://``, ``gs://``...).
The format comes from ``input.format``, else from the extension (``.parquet``/``.pq``,
``.jsonl``/``.ndjson``, ``.csv``).

Rows
    Every row is a dict with ``"id"`` and ``"text"`` plus the file's other columns. The id
    is the ``id_column`` value as a string, else ``<file relative to the input root>:<row>``
    with rows counted from 0 in each file (the root is the directory, the fixed part of a
    glob, or the file's own directory). OpenAI batch requests use ``custom_id``, and
    ``text`` is the last user message. Row ids are not checked for uniqueness except
    ``custom_id``, which is (a repeat is an :class:`InputError` naming both lines).
Lines
    JSONL and CSV lines end at ``\\n`` (CRLF is fine). Blank lines are not rows. CSV files
    have a header line; a quoted field may hold newlines (RFC 4180), so a record may span
    lines. Malformed rows (bad JSON, invalid UTF-8, no text or id, wrong field count) are
    :class:`DeadRow` values with the reason, never fatal.
Shards
    Each shard is a row range of one file: whole Parquet row groups grouped up to
    ``rows_per_shard`` (footer metadata only), or for JSONL/CSV a byte range cut from the
    row marks the counting pass left (a bounded index: :mod:`scheduler.inputs._index`), so
    sharding never reads a text file again. ``read`` reads only that range.
Fingerprint
    sha256 over the (url, size, version, rows) of every file, in order; ``version`` is the
    local mtime or the object store's etag/generation.

Opening counts every file's rows (one streamed pass, which also marks where rows start:
the plan, the run id and the manifest all come from it). A worker that only reads shards
it was given can pass ``count_rows=False``: listing is then the only cost, and the counts
are made the first time ``files``, ``total_rows``, ``fingerprint`` or ``shards`` is used.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import fsspec

from scheduler.errors import InputError, describe_cloud_error
from scheduler.inputs._index import RowIndex, capacity_for
from scheduler.inputs._types import DeadRow, InputFile, Row, ShardSpec
from scheduler.inputs.formats import FileCount, FileCtx, FormatReader, reader_for
from scheduler.recipe import InputSpec

__all__ = ["DeadRow", "Input", "InputFile", "Row", "ShardSpec", "format_of", "open_input"]

_EXTENSIONS = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
}
_FORMAT_EXTENSIONS = {
    "parquet": (".parquet", ".pq"),
    "jsonl": (".jsonl", ".ndjson"),
    "openai-batch": (".jsonl", ".ndjson"),
    "csv": (".csv",),
}
_GLOB_CHARS = "*?["
_SAMPLE_FOR_CHECK = 100
_VERSION_KEYS = ("ETag", "etag", "generation", "mtime", "LastModified", "last_modified", "updated")


def format_of(name: str) -> str | None:
    """The format an extension implies, or None."""
    lower = name.lower()
    for ext, fmt in _EXTENSIONS.items():
        if lower.endswith(ext):
            return fmt
    return None


@contextmanager
def _reading(what: str) -> Iterator[None]:
    """Turn I/O errors into one-line :class:`InputError` messages naming the file."""
    try:
        yield
    except FileNotFoundError as e:
        raise InputError(f"input file not found: {what}; check input.path") from e
    except PermissionError as e:
        raise InputError(f"cannot read {what}: permission denied; check its permissions") from e
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read {what}: {e}; check that it exists and is readable") from e
    except Exception as e:
        cloud = describe_cloud_error(e)
        if cloud is None:
            raise
        raise InputError(f"cannot read {what}: {cloud}") from e


def _version(info: dict[str, Any]) -> str:
    for key in _VERSION_KEYS:
        value = info.get(key)
        if value is not None:
            return str(value).strip('"')
    return ""


class Input:
    """An opened input: its files, their fingerprint, shards and rows."""

    def __init__(
        self,
        *,
        spec: InputSpec,
        path: str,
        fmt: str,
        fs: Any,
        root: str,
        entries: list[tuple[str, dict[str, Any]]],
        rows_per_shard: int | None = None,
    ) -> None:
        self.spec = spec
        self._rows_per_shard = rows_per_shard
        self.path = path
        self.format = fmt
        self._fs = fs
        self._reader: FormatReader = reader_for(fmt)
        self._ctx: dict[str, FileCtx] = {}
        self._entries = entries
        self._files: list[InputFile] | None = None
        self._counts: dict[str, FileCount] = {}  # url -> what counting found (row marks)
        for fs_path, _ in entries:
            url = fs_path if _is_local(fs) else fs.unstrip_protocol(fs_path)
            name = posixpath.relpath(fs_path, root) if root else posixpath.basename(fs_path)
            self._ctx[url] = FileCtx(fs=fs, path=fs_path, url=url, name=name, spec=spec)

    def __repr__(self) -> str:
        return f"Input({self.path!r}, format={self.format!r}, files={len(self._entries)})"

    @property
    def files(self) -> list[InputFile]:
        """The files in input order, with their row counts."""
        if self._files is None:
            self._files = self._count()
        return self._files

    @property
    def total_rows(self) -> int:
        """Rows over all files, malformed ones included."""
        return sum(f.rows for f in self.files)

    def fingerprint(self) -> str:
        """sha256 hex over (url, size, version, rows) of every file, in order."""
        keyed = [[f.url, f.size, f.version, f.rows] for f in self.files]
        return hashlib.sha256(json.dumps(keyed, separators=(",", ":")).encode()).hexdigest()

    def shards(self, rows_per_shard: int) -> list[ShardSpec]:
        """Contiguous row ranges of at most ``rows_per_shard`` rows; ids in input order."""
        if rows_per_shard <= 0:
            raise InputError(f"rows_per_shard must be positive (got {rows_per_shard})")
        ranges = []
        for f in self.files:
            if f.rows == 0:
                continue
            with _reading(f.url):
                counted = self._counts[f.url]
                for r in self._reader.shards(self._ctx[f.url], counted, f.size, rows_per_shard):
                    ranges.append((f.url, r))
        width = max(5, len(str(len(ranges) - 1)))
        return [
            ShardSpec(
                shard_id=str(i).zfill(width),
                file=url,
                row_offset=r.row_offset,
                row_count=r.row_count,
                byte_start=r.byte_start,
                byte_end=r.byte_end,
                line_offset=r.line_offset,
                skip_rows=r.skip_rows,
            )
            for i, (url, r) in enumerate(ranges)
        ]

    def read(self, shard: ShardSpec) -> tuple[list[Row], list[DeadRow]]:
        """The rows of one shard, and the rows of it that are malformed."""
        ctx = self._ctx.get(shard.file)
        if ctx is None:
            raise InputError(
                f"shard {shard.shard_id} names {shard.file}, which is not part of input "
                f"{self.path}; the input changed, start a new run"
            )
        with _reading(shard.file):
            return self._reader.read(ctx, shard)

    def sample(self, n: int) -> list[Row]:
        """Up to ``n`` good rows from the start of the input (cheap: reads only a prefix)."""
        out: list[Row] = []
        for ctx in self._ctx.values():
            if len(out) >= max(n, 0):
                break
            with _reading(ctx.url):
                out.extend(self._reader.sample(ctx, n - len(out)))
        return out

    def _count(self) -> list[InputFile]:
        files: list[InputFile] = []
        seen: dict[str, str] = {}  # custom_id -> "file line N"
        sizes = [int(info.get("size") or 0) for _, info in self._entries]
        index = RowIndex(  # one memory budget for every file's marks
            capacity=capacity_for(sum(sizes)),
            total_bytes=sum(sizes),
            base_step=self._rows_per_shard or 1,
        )
        for (_, info), ctx, size in zip(self._entries, self._ctx.values(), sizes, strict=True):
            with _reading(ctx.url):
                self._reader.check(ctx)
                counted = self._reader.count(ctx, index.file(size=size))
            for custom_id, line in counted.custom_ids:
                where = f"{ctx.url} line {line}"
                if custom_id in seen:
                    raise InputError(
                        f"duplicate custom_id {custom_id!r} at {seen[custom_id]} and {where}; "
                        "custom_id must be unique across the input"
                    )
                seen[custom_id] = where
            counted.custom_ids = []  # checked; the marks are what sharding needs
            self._counts[ctx.url] = counted
            files.append(
                InputFile(
                    url=ctx.url,
                    format=self.format,
                    size=size,
                    version=_version(info),
                    rows=counted.rows,
                )
            )
        if sum(f.rows for f in files) == 0:
            raise InputError(
                f"input {self.path} has no rows ({len(files)} file(s), all empty); check input.path"
            )
        if self.format == "jsonl":
            self._check_text_column()
        return files

    def _check_text_column(self) -> None:
        """Refuse a text_column that none of the first rows has (a typo in the recipe)."""
        ctx = next(iter(self._ctx.values()))
        with _reading(ctx.url), ctx.open() as fh:
            seen: set[str] = set()
            for _ in range(_SAMPLE_FOR_CHECK):
                line = fh.readline()
                if not line:
                    break
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if isinstance(obj, dict):
                    if self.spec.text_column in obj:
                        return
                    seen.update(obj)
        if seen:
            raise InputError(
                f"{ctx.url}: none of the first rows has the text column "
                f"'{self.spec.text_column}' (keys: {', '.join(sorted(seen)[:12])}); "
                "set input.text_column"
            )


def _is_local(fs: Any) -> bool:
    return "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))


def _glob_root(path: str) -> str:
    """The directory part of a glob before its first wildcard."""
    cut = min(path.find(c) for c in _GLOB_CHARS if c in path)
    return path[:cut].rsplit("/", 1)[0] if "/" in path[:cut] else ""


def _skipped(rel: str) -> bool:
    return any(part.startswith((".", "_")) for part in rel.split("/"))


def _discover(fs: Any, fs_path: str, path: str, fmt: str | None) -> tuple[str, list[str]]:
    """The input root and its files, in order: a glob, a directory or one file."""
    if any(c in fs_path for c in _GLOB_CHARS):
        # A glob takes exactly what it matches (hidden files too, if the pattern says so).
        found = [p for p in sorted(fs.glob(fs_path)) if fs.isfile(p)]
        if not found:
            raise InputError(f"no files match {path}; check input.path")
        return _glob_root(fs_path), found
    if fs.isdir(fs_path):
        root = fs_path.rstrip("/")

        def wanted(p: str) -> bool:
            if _skipped(posixpath.relpath(p, root)):  # _SUCCESS, .crc, .hidden/...
                return False
            if fmt is None:
                return format_of(p) is not None
            return p.lower().endswith(_FORMAT_EXTENSIONS[fmt])

        found = [p for p in sorted(fs.find(fs_path)) if wanted(p)]
        if not found:
            kinds = fmt or "parquet, jsonl or csv"
            raise InputError(f"no {kinds} files in directory {path}; check input.path")
        return root, found
    if fs.exists(fs_path):
        return posixpath.dirname(fs_path), [fs_path]
    raise InputError(
        f"input not found: {path}; check input.path (a relative path is looked up "
        "from the current directory, then beside the recipe)"
    )


def _format_from_names(path: str, found: list[str]) -> str:
    kinds = {format_of(p) for p in found}
    if None in kinds:
        odd = next(p for p in found if format_of(p) is None)
        raise InputError(f"cannot tell the format of {odd} from its extension; set input.format")
    if len(kinds) > 1:
        raise InputError(
            f"input {path} mixes formats ({', '.join(sorted(str(k) for k in kinds))}); "
            "narrow input.path or set input.format"
        )
    return str(kinds.pop())


def open_input(
    spec: InputSpec, path: str, *, count_rows: bool = True, rows_per_shard: int | None = None
) -> Input:
    """Open the input a recipe names (``path`` already resolved by ``resolve_input_path``).

    ``rows_per_shard``, when the caller knows it before the rows are counted (the recipe
    fixes it), makes the counting pass mark exactly where those shards start; any other
    size is still served by :meth:`Input.shards`, from a coarser index.

    Raises :class:`InputError` for a missing file, a glob or directory without files of the
    format, a file that cannot be read, a column missing from a header or schema, a
    repeated ``custom_id``, or an input with no rows (the last three need ``count_rows``).
    """
    try:
        fs, fs_path = fsspec.core.url_to_fs(path)
    except (ImportError, ValueError) as e:
        raise InputError(f"cannot open input {path}: {e}; check input.path") from e
    # fsspec caches filesystem instances and their listings per process; an input opened
    # again (a new run, a changed bucket) must see the files as they are now.
    fs.invalidate_cache()
    with _reading(path):
        root, found = _discover(fs, fs_path, path, spec.format)
        fmt = spec.format or _format_from_names(path, found)
        entries = [(p, fs.info(p)) for p in found]
    if rows_per_shard is not None and rows_per_shard <= 0:
        raise InputError(f"rows_per_shard must be positive (got {rows_per_shard})")
    opened = Input(
        spec=spec,
        path=path,
        fmt=fmt,
        fs=fs,
        root=root,
        entries=entries,
        rows_per_shard=rows_per_shard,
    )
    if count_rows:
        _ = opened.files
    return opened
