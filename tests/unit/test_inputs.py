"""Inputs: formats, discovery, ids, shards, dead rows, fingerprints and error messages."""

from __future__ import annotations

import itertools
import json
import os
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scheduler.errors import InputError
from scheduler.inputs import DeadRow, Input, ShardSpec, open_input
from scheduler.recipe import InputSpec

ROWS = [{"id": f"r{i}", "text": f"sentence number {i}", "n": i} for i in range(23)]


def spec(**kw: Any) -> InputSpec:
    return InputSpec(path="unused", **kw)


def write_jsonl(path: Path, rows: list[dict[str, Any]], *, eol: str = "\n") -> Path:
    path.write_bytes("".join(json.dumps(r) + eol for r in rows).encode())
    return path


def write_csv(path: Path, rows: list[dict[str, Any]], *, eol: str = "\n") -> Path:
    lines = ["id,text,n"] + [f'{r["id"]},"{r["text"]}",{r["n"]}' for r in rows]
    path.write_bytes((eol.join(lines) + eol).encode())
    return path


def write_parquet(path: Path, rows: list[dict[str, Any]], *, row_group_size: int = 5) -> Path:
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=row_group_size)
    return path


def read_all(inp: Input, rows_per_shard: int) -> tuple[list[dict[str, Any]], list[DeadRow]]:
    rows: list[dict[str, Any]] = []
    dead: list[DeadRow] = []
    for shard in inp.shards(rows_per_shard):
        r, d = inp.read(shard)
        assert len(r) + len(d) == shard.row_count
        rows += r
        dead += d
    return rows, dead


@pytest.mark.parametrize(
    ("fmt", "writer", "name"),
    [
        ("jsonl", write_jsonl, "data.jsonl"),
        ("csv", write_csv, "data.csv"),
        ("parquet", write_parquet, "data.parquet"),
    ],
)
@pytest.mark.parametrize("rows_per_shard", [1, 4, 5, 7, 23, 1000])
def test_each_format_round_trips(
    tmp_path: Path, fmt: str, writer: Any, name: str, rows_per_shard: int
) -> None:
    path = writer(tmp_path / name, ROWS)
    inp = open_input(spec(id_column="id"), str(path))
    assert inp.format == fmt  # from the extension
    assert inp.total_rows == len(ROWS)
    assert [f.rows for f in inp.files] == [len(ROWS)]
    rows, dead = read_all(inp, rows_per_shard)
    assert dead == []
    assert [r["id"] for r in rows] == [r["id"] for r in ROWS]
    assert [r["text"] for r in rows] == [r["text"] for r in ROWS]
    # CSV keeps strings; the other formats keep types.
    assert [str(r["n"]) for r in rows] == [str(r["n"]) for r in ROWS]


@pytest.mark.parametrize("rows_per_shard", [1, 2, 3, 10, 22, 23, 24, 10_000])
def test_shards_cover_every_row_exactly_once(tmp_path: Path, rows_per_shard: int) -> None:
    write_jsonl(tmp_path / "a.jsonl", ROWS[:10])
    write_jsonl(tmp_path / "b.jsonl", ROWS[10:])
    inp = open_input(spec(), str(tmp_path))
    shards = inp.shards(rows_per_shard)
    assert [s.shard_id for s in shards] == sorted(s.shard_id for s in shards)
    assert shards[0].shard_id == "00000"
    covered: dict[str, list[int]] = {}
    for s in shards:
        assert 0 < s.row_count <= rows_per_shard
        covered.setdefault(s.file, []).extend(range(s.row_offset, s.row_offset + s.row_count))
    assert covered == {inp.files[0].url: list(range(10)), inp.files[1].url: list(range(13))}
    # Byte ranges tile each file without gaps or overlap.
    for f in inp.files:
        ranges = [(s.byte_start, s.byte_end) for s in shards if s.file == f.url]
        assert ranges[0][0] == 0 and ranges[-1][1] == f.size
        assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    rows, _ = read_all(inp, rows_per_shard)
    assert [r["id"] for r in rows] == [f"a.jsonl:{i}" for i in range(10)] + [
        f"b.jsonl:{i}" for i in range(13)
    ]


@pytest.mark.parametrize("eol", ["\n", "\r\n"])
@pytest.mark.parametrize("trailing", [True, False])
@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_byte_ranges_with_crlf_and_without_trailing_newline(
    tmp_path: Path, eol: str, trailing: bool, fmt: str
) -> None:
    path = tmp_path / f"d.{fmt}"
    (write_jsonl if fmt == "jsonl" else write_csv)(path, ROWS[:9], eol=eol)
    if not trailing:
        path.write_bytes(path.read_bytes().removesuffix(eol.encode()))
    inp = open_input(spec(id_column="id"), str(path))
    assert inp.total_rows == 9
    data = path.read_bytes()
    shards = inp.shards(2)
    assert [s.row_count for s in shards] == [2, 2, 2, 2, 1]
    for s in shards:
        assert s.byte_start is not None and s.byte_end is not None
        chunk = data[s.byte_start : s.byte_end].decode()
        first = ROWS[s.row_offset]
        # Each range starts exactly at its first row and holds exactly its rows.
        assert chunk.startswith(json.dumps(first) if fmt == "jsonl" else f"{first['id']},")
        assert sum(1 for line in chunk.split(eol) if line.strip()) == s.row_count
        rows, dead = inp.read(s)
        assert not dead
        assert [r["text"] for r in rows] == [
            r["text"] for r in ROWS[s.row_offset : s.row_offset + s.row_count]
        ]
        assert all("\r" not in str(v) for r in rows for v in r.values())


def test_blank_lines_are_not_rows(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('\n{"text": "a"}\n\n  \n{"text": "b"}\r\n\r\n{"text": "c"}\n\n')
    inp = open_input(spec(), str(path))
    assert inp.total_rows == 3
    rows, dead = read_all(inp, 1)
    assert [r["text"] for r in rows] == ["a", "b", "c"] and not dead
    assert [r["id"] for r in rows] == ["d.jsonl:0", "d.jsonl:1", "d.jsonl:2"]
    # line_offset counts physical lines, so a dead row can name its line.
    assert [s.line_offset for s in inp.shards(1)] == [1, 4, 6]


def test_malformed_jsonl_rows_become_dead_rows_with_reasons(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    lines = [
        b'{"id": 1, "text": "fine"}',
        b'{"id": 2, "text": "broken" "x"}',
        b'{"id": 3, "text": "caf\xe9 latin-1"}',
        b'{"id": 4, "body": "no text"}',
        b"[1, 2, 3]",
        b'{"text": "no id"}',
        b'{"id": 7, "text": null}',
        b'{"id": 8, "text": "also fine"}',
        b"x" * 5000,
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    inp = open_input(spec(id_column="id"), str(path))
    assert inp.total_rows == 9
    rows, dead = read_all(inp, 4)
    assert [r["id"] for r in rows] == ["1", "8"]
    reasons = {d.row_number: d.reason for d in dead}
    assert reasons == {
        1: "invalid JSON at line 2: Expecting ',' delimiter (column 28)",
        2: "invalid UTF-8 at line 3 (byte 23)",
        3: "missing text column 'text' at line 4",
        4: "line 5 is a JSON array, not an object",
        5: "missing id column 'id' at line 6",
        6: "text column 'text' holds null, not a string, at line 7",
        8: "invalid JSON at line 9: Expecting value (column 1)",
    }
    by_row = {d.row_number: d for d in dead}
    assert by_row[3].id == "4"  # the id is kept when the row has one
    assert by_row[1].id == "bad.jsonl:1"  # else file:row
    assert by_row[1].raw == lines[1].decode()
    assert by_row[2].raw is not None and "caf\ufffd" in by_row[2].raw
    assert by_row[8].raw == "x" * 1000  # truncated
    assert all(d.file == inp.files[0].url for d in dead)


def test_csv_quoted_newlines_and_bad_records(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_bytes(
        b'id,text\r\n1,"two\r\nlines"\r\n2,"a ""quoted"" word"\r\n3\r\n4,"x",extra\r\n'
        b'5,"multi\n\nline, with blank"\r\n6,plain\r\n'
    )
    inp = open_input(spec(id_column="id"), str(path))
    assert inp.total_rows == 6
    for rows_per_shard in (1, 2, 4):
        rows, dead = read_all(inp, rows_per_shard)
        assert [(r["id"], r["text"]) for r in rows] == [
            ("1", "two\r\nlines"),
            ("2", 'a "quoted" word'),
            ("5", "multi\n\nline, with blank"),
            ("6", "plain"),
        ]
        assert [(d.row_number, d.reason) for d in dead] == [
            (2, "expected 2 fields at line 5, got 1"),
            (3, "expected 2 fields at line 6, got 3"),
        ]


def test_csv_header_must_name_the_columns(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.csv", ROWS)
    with pytest.raises(
        InputError,
        match=r"d\.csv: no text column 'body' in the CSV header \(columns: id, text, n\); set input\.text_column",
    ):
        open_input(spec(text_column="body"), str(path))
    with pytest.raises(InputError, match=r"no id column 'key' in the CSV header"):
        open_input(spec(id_column="key"), str(path))


def test_parquet_checks_schema_and_dead_rows_nulls(tmp_path: Path) -> None:
    rows: list[dict[str, Any]] = [{"id": i, "text": f"t{i}"} for i in range(12)]
    rows[3]["text"] = None
    rows[7]["id"] = None
    path = write_parquet(tmp_path / "p.parquet", rows, row_group_size=4)
    with pytest.raises(
        InputError, match=r"no text column 'body' in the Parquet schema \(columns: id, text\)"
    ):
        open_input(spec(text_column="body"), str(path))
    with pytest.raises(InputError, match=r"text column 'id' has type int64, not string"):
        open_input(spec(text_column="id"), str(path))
    inp = open_input(spec(id_column="id"), str(path))
    good, dead = read_all(inp, 3)
    assert [r["id"] for r in good] == [str(i) for i in range(12) if i not in (3, 7)]
    assert [(d.id, d.reason) for d in dead] == [
        ("3", "text column 'text' holds null, not a string, at row 3"),
        ("p.parquet:7", "missing id column 'id' at row 7"),
    ]


@pytest.mark.parametrize(
    ("groups", "rows_per_shard", "expected"),
    [
        ([4, 4, 4], 4, [(0, 4), (4, 4), (8, 4)]),
        ([4, 4, 4], 8, [(0, 8), (8, 4)]),
        ([4, 4, 4], 5, [(0, 4), (4, 4), (8, 4)]),  # whole row groups, never a split one
        ([4, 4, 4], 100, [(0, 12)]),
        ([10, 2, 2], 3, [(0, 3), (3, 3), (6, 3), (9, 1), (10, 2), (12, 2)]),  # big group cut
        ([2, 10], 4, [(0, 2), (2, 4), (6, 4), (10, 2)]),
    ],
)
def test_parquet_shards_group_row_groups(
    tmp_path: Path, groups: list[int], rows_per_shard: int, expected: list[tuple[int, int]]
) -> None:
    path = tmp_path / "g.parquet"
    with pq.ParquetWriter(path, pa.schema([("text", pa.string())])) as w:
        start = 0
        for n in groups:
            w.write_table(pa.table({"text": [f"r{start + i}" for i in range(n)]}))
            start += n
    inp = open_input(spec(), str(path))
    shards = inp.shards(rows_per_shard)
    assert [(s.row_offset, s.row_count) for s in shards] == expected
    assert all(s.byte_start is None for s in shards)
    rows, _ = read_all(inp, rows_per_shard)
    assert [r["text"] for r in rows] == [f"r{i}" for i in range(sum(groups))]


def batch_line(custom_id: str | None, text: str = "hi", **extra: Any) -> str:
    req: dict[str, Any] = {
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {
            "model": "m",
            "max_tokens": 20,
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": text},
            ],
        },
    }
    if custom_id is not None:
        req["custom_id"] = custom_id
    req.update(extra)
    return json.dumps(req)


def test_openai_batch_rows_and_dead_rows(tmp_path: Path) -> None:
    parts = {
        "role": "user",
        "content": [
            {"type": "text", "text": "part one"},
            {"type": "image_url", "image_url": {"url": "x"}},
            {"type": "text", "text": "part two"},
        ],
    }
    lines = [
        batch_line("req-1", "first question"),
        batch_line(None),
        batch_line("req-3", body="not an object"),
        batch_line("req-4", body={"model": "m"}),
        batch_line("req-5", body={"model": "m", "messages": [parts]}),
        "{not json",
    ]
    path = tmp_path / "batch.jsonl"
    path.write_text("\n".join(lines) + "\n")
    inp = open_input(spec(format="openai-batch"), str(path))
    assert inp.format == "openai-batch" and inp.total_rows == 6
    rows, dead = read_all(inp, 2)
    assert [(r["id"], r["text"]) for r in rows] == [
        ("req-1", "first question"),
        ("req-5", "part one\npart two"),
    ]
    assert rows[0]["body"]["max_tokens"] == 20
    assert rows[0]["method"] == "POST" and rows[0]["url"] == "/v1/chat/completions"
    assert [(d.id, d.reason) for d in dead] == [
        ("batch.jsonl:1", "missing custom_id at line 2"),
        ("req-3", "missing body at line 3"),
        ("req-4", "missing body.messages at line 4"),
        (
            "batch.jsonl:5",
            "invalid JSON at line 6: Expecting property name enclosed in double quotes (column 2)",
        ),
    ]


def test_openai_batch_duplicate_custom_id_names_both_lines(tmp_path: Path) -> None:
    a = tmp_path / "a.jsonl"
    a.write_text("\n".join([batch_line("x"), batch_line("dup"), batch_line("y")]) + "\n")
    with pytest.raises(
        InputError, match=r"duplicate custom_id 'dup' at .*a\.jsonl line 2 and .*a\.jsonl line 4"
    ):
        a.write_text(a.read_text() + batch_line("dup") + "\n")
        open_input(spec(format="openai-batch"), str(a))
    # Across files too.
    a.write_text(batch_line("dup") + "\n")
    (tmp_path / "b.jsonl").write_text(batch_line("z") + "\n" + batch_line("dup") + "\n")
    with pytest.raises(InputError, match=r"'dup' at .*a\.jsonl line 1 and .*b\.jsonl line 2"):
        open_input(spec(format="openai-batch"), str(tmp_path / "*.jsonl"))


def test_glob_and_directory_discovery(tmp_path: Path) -> None:
    d = tmp_path / "in"
    (d / "sub").mkdir(parents=True)
    write_jsonl(d / "b.jsonl", ROWS[:2])
    write_jsonl(d / "a.jsonl", ROWS[2:5])
    write_jsonl(d / "sub" / "c.ndjson", ROWS[5:6])
    write_jsonl(d / "_SUCCESS.jsonl", ROWS[:1])  # markers and hidden files are skipped
    (d / ".hidden").mkdir()
    write_jsonl(d / ".hidden" / "h.jsonl", ROWS[:1])
    (d / "notes.txt").write_text("ignored")
    inp = open_input(spec(), str(d))
    assert [Path(f.url).relative_to(d).as_posix() for f in inp.files] == [
        "a.jsonl",
        "b.jsonl",
        "sub/c.ndjson",
    ]
    rows, _ = read_all(inp, 100)
    assert [r["id"] for r in rows] == [
        "a.jsonl:0",
        "a.jsonl:1",
        "a.jsonl:2",
        "b.jsonl:0",
        "b.jsonl:1",
        "sub/c.ndjson:0",
    ]
    globbed = open_input(spec(id_column="id"), str(d / "*.jsonl"))
    assert [Path(f.url).name for f in globbed.files] == ["_SUCCESS.jsonl", "a.jsonl", "b.jsonl"]
    assert globbed.total_rows == 6
    assert [r["id"] for r in globbed.sample(4)] == ["r0", "r2", "r3", "r4"]


def test_directory_of_mixed_formats_needs_a_format(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", ROWS)
    write_csv(tmp_path / "b.csv", ROWS)
    with pytest.raises(
        InputError, match=r"mixes formats \(csv, jsonl\); narrow input\.path or set input\.format"
    ):
        open_input(spec(), str(tmp_path))
    assert open_input(spec(format="csv"), str(tmp_path)).total_rows == len(ROWS)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (
            lambda p: str(p / "missing.jsonl"),
            r"input not found: .*missing\.jsonl; check input\.path",
        ),
        (lambda p: str(p / "*.pq"), r"no files match .*\*\.pq; check input\.path"),
        (lambda p: str(p), r"no parquet, jsonl or csv files in directory .*; check input\.path"),
        (
            lambda p: str(p / "empty.jsonl"),
            r"input .*empty\.jsonl has no rows \(1 file\(s\), all empty\)",
        ),
        (lambda p: str(p / "blank.csv"), r"input .*blank\.csv has no rows"),
        (
            lambda p: str(p / "data.txt"),
            r"cannot tell the format of .*data\.txt from its extension; set input\.format",
        ),
        (
            lambda p: str(p / "fake.parquet"),
            r"cannot read .*fake\.parquet as Parquet .*; check the file or set input\.format",
        ),
    ],
)
def test_input_errors_are_one_line(tmp_path: Path, make: Any, match: str) -> None:
    (tmp_path / "empty.jsonl").write_bytes(b"")
    (tmp_path / "blank.csv").write_text("id,text\n\n")
    (tmp_path / "data.txt").write_text("x\n")
    (tmp_path / "fake.parquet").write_text("not parquet\n")
    d = tmp_path / "sub"
    d.mkdir()
    target = make(d if "directory" in match else tmp_path)
    with pytest.raises(InputError, match=match) as err:
        open_input(spec(), target)
    assert "\n" not in str(err.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads everything")
def test_unreadable_file_is_an_input_error(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "locked.jsonl", ROWS)
    path.chmod(0)
    with pytest.raises(InputError, match=r"cannot read .*locked\.jsonl: permission denied"):
        open_input(spec(), str(path))


def test_jsonl_text_column_typo_is_caught_at_open(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", ROWS)
    with pytest.raises(
        InputError,
        match=r"none of the first rows has the text column 'txt' \(keys: id, n, text\); set input\.text_column",
    ):
        open_input(spec(text_column="txt"), str(path))


def test_fingerprint_changes_when_a_file_changes(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", ROWS)
    first = open_input(spec(), str(path)).fingerprint()
    assert open_input(spec(), str(path)).fingerprint() == first  # stable
    assert len(first) == 64
    # Same size, same rows, only the content and mtime differ.
    data = path.read_bytes()
    path.write_bytes(data.replace(b"sentence number 1,", b"Sentence number 1,"))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    second = open_input(spec(), str(path)).fingerprint()
    assert second != first
    write_jsonl(tmp_path / "d.jsonl", [*ROWS, ROWS[0]])
    assert open_input(spec(), str(path)).fingerprint() not in (first, second)
    write_jsonl(tmp_path / "e.jsonl", ROWS[:1])
    assert (
        open_input(spec(), str(tmp_path)).fingerprint()
        != open_input(spec(), str(path)).fingerprint()
    )


def test_read_refuses_a_file_that_changed_after_sharding(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", ROWS)
    inp = open_input(spec(), str(path))
    shard = inp.shards(10)[0]
    time.sleep(0.01)
    write_jsonl(path, [{"text": "x" * 400}] * 3)
    with pytest.raises(
        InputError, match=r"d\.jsonl changed since it was sharded: shard 00000 should hold 10 rows"
    ):
        inp.read(shard)


def test_shard_spec_round_trips_through_dict() -> None:
    shard = ShardSpec("00007", "/x/y.jsonl", 70, 10, 123, 456, 71)
    assert ShardSpec.from_dict(shard.to_dict()) == shard
    coarse = ShardSpec("00008", "/x/y.jsonl", 80, 10, 400, 900, 75, skip_rows=3)
    assert ShardSpec.from_dict(coarse.to_dict()) == coarse
    assert ShardSpec.from_dict(
        {"shard_id": "00001", "file": "f", "row_offset": 1, "row_count": 2}
    ) == ShardSpec("00001", "f", 1, 2)
    assert json.loads(json.dumps(shard.to_dict())) == shard.to_dict()


def test_count_rows_false_defers_the_scan(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", ROWS)
    shard = open_input(spec(), str(path)).shards(5)[2]
    lazy = open_input(spec(), str(path), count_rows=False)
    assert lazy._files is None  # nothing counted yet
    rows, _ = lazy.read(shard)
    assert [r["text"] for r in rows] == [r["text"] for r in ROWS[10:15]]
    assert lazy._files is None
    assert lazy.total_rows == len(ROWS)


def test_sample_is_the_first_good_rows(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text("oops\n" + "".join(json.dumps(r) + "\n" for r in ROWS))
    inp = open_input(spec(), str(path))
    assert [r["text"] for r in inp.sample(3)] == [r["text"] for r in ROWS[:3]]
    assert [r["id"] for r in inp.sample(2)] == ["d.jsonl:1", "d.jsonl:2"]
    assert len(inp.sample(10_000)) == len(ROWS)
    assert inp.sample(0) == []
    csv_in = open_input(spec(), str(write_csv(tmp_path / "d.csv", ROWS)))
    assert [r["id"] for r in csv_in.sample(2)] == ["d.csv:0", "d.csv:1"]
    pq_in = open_input(spec(), str(write_parquet(tmp_path / "d.parquet", ROWS)))
    assert [r["n"] for r in pq_in.sample(7)] == list(range(7))


def test_fsspec_url_input(tmp_path: Path) -> None:
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe("/bucket/in/a.jsonl", "".join(json.dumps(r) + "\n" for r in ROWS[:5]).encode())
    fs.pipe("/bucket/in/b.jsonl", "".join(json.dumps(r) + "\n" for r in ROWS[5:]).encode())
    try:
        inp = open_input(spec(), "memory://bucket/in/*.jsonl")
        assert [f.url for f in inp.files] == [
            "memory:///bucket/in/a.jsonl",
            "memory:///bucket/in/b.jsonl",
        ]
        rows, _ = read_all(inp, 4)
        assert [r["id"] for r in rows][:6] == [f"a.jsonl:{i}" for i in range(5)] + ["b.jsonl:0"]
        assert len(rows) == len(ROWS)
    finally:
        fs.rm("/bucket", recursive=True)


def test_demo_dataset_is_what_the_readme_says() -> None:
    from importlib import util

    path = Path(__file__).resolve().parents[2] / "recipes" / "data" / "sentences.jsonl"
    inp = open_input(spec(id_column="id"), str(path))
    assert 3000 <= inp.total_rows <= 5000
    rows, dead = read_all(inp, 500)
    assert not dead
    assert len({r["id"] for r in rows}) == len({r["text"] for r in rows}) == inp.total_rows
    assert rows[0]["id"] == "s00001" and len({r["topic"] for r in rows}) >= 15
    # The committed file is exactly what the generator writes.
    loaded = util.spec_from_file_location("make_sentences", path.with_name("make_sentences.py"))
    assert loaded is not None and loaded.loader is not None
    module = util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    regenerated = "".join(
        json.dumps(r, ensure_ascii=False) + "\n" for r in module.generate(inp.total_rows)
    )
    assert regenerated == path.read_text(encoding="utf-8")


def test_byte_order_marks_and_long_csv_fields(tmp_path: Path) -> None:
    bom = "\ufeff".encode()
    j = tmp_path / "bom.jsonl"
    j.write_bytes(bom + b'{"text": "first"}\n{"text": "second"}\n')
    assert [r["text"] for r in read_all(open_input(spec(), str(j)), 1)[0]] == ["first", "second"]
    long_text = "word " * 60_000  # 300 kB: past the csv module's default field limit
    c = tmp_path / "bom.csv"
    c.write_bytes(bom + f'text,id\n"{long_text}",1\nshort,2\n'.encode())
    inp = open_input(spec(id_column="id"), str(c))
    rows, dead = read_all(inp, 1)
    assert not dead
    assert [(r["id"], len(r["text"])) for r in rows] == [("1", len(long_text)), ("2", 5)]


def test_a_manifest_without_line_offsets_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "a"}\n{"oops": 1}\n')
    inp = open_input(spec(), str(path))
    shard = inp.shards(10)[0].to_dict()
    shard.pop("line_offset")
    rows, dead = inp.read(ShardSpec.from_dict(shard))
    assert [r["text"] for r in rows] == ["a"]
    assert [d.reason for d in dead] == ["missing text column 'text' at line 2"]
    with pytest.raises(InputError, match=r"shard 00000 of .*d\.jsonl has no byte range"):
        inp.read(ShardSpec("00000", inp.files[0].url, 0, 2))


def test_files_without_rows_get_no_shards(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("id,text\n")
    write_csv(tmp_path / "b.csv", ROWS[:3])
    inp = open_input(spec(), str(tmp_path))
    assert [f.rows for f in inp.files] == [0, 3]
    shards = inp.shards(2)
    assert [(Path(s.file).name, s.row_offset, s.row_count) for s in shards] == [
        ("b.csv", 0, 2),
        ("b.csv", 2, 1),
    ]
    with pytest.raises(InputError, match=r"rows_per_shard must be positive \(got 0\)"):
        inp.shards(0)


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_a_large_input_shards_from_its_index_and_reads_every_row_once(
    tmp_path: Path, fmt: str
) -> None:
    # More rows than the index keeps one mark each for: shards whose edges fall between
    # marks read the marks' byte range and skip the rows of their neighbours.
    n = 20_000
    rows = [{"id": f"r{i}", "text": f"t{i}", "n": i} for i in range(n)]
    path = tmp_path / f"big.{fmt}"
    if fmt == "jsonl":
        lines = [json.dumps(r) for r in rows]
        lines[9_999] = "{broken"  # row 9999 is dead, on line 10,000 (+1 for the blank)
    else:
        lines = ["id,text,n"] + [f"{r['id']},{r['text']},{r['n']}" for r in rows]
        lines[10_000] = "r9999,too,many,fields"  # row 9999, line 10,001 (+1 for the blank)
    lines.insert(5_000, "")
    path.write_text("\n".join(lines) + "\n")
    inp = open_input(spec(id_column="id"), str(path))
    shards = inp.shards(777)
    assert [s.row_count for s in shards] == [777] * (n // 777) + [n % 777]
    assert any(s.skip_rows for s in shards)
    # Through the manifest's Parquet and back, as a worker reads it.
    table = pa.Table.from_pylist([s.to_dict() for s in shards])
    assert [ShardSpec.from_dict(d) for d in table.to_pylist()] == shards
    got, dead = read_all(inp, 777)
    assert [r["id"] for r in got] == [f"r{i}" for i in range(n) if i != 9_999]
    assert [(d.row_number, d.id) for d in dead] == [(9_999, f"big.{fmt}:9999")]
    line = 10_001 if fmt == "jsonl" else 10_002
    assert f"line {line}" in dead[0].reason


def test_a_manifest_from_before_skip_rows_reads_as_exact_ranges(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", ROWS)
    inp = open_input(spec(), str(path))
    for shard in inp.shards(4):
        old = shard.to_dict()
        old.pop("skip_rows")
        assert ShardSpec.from_dict(old) == shard
        rows, _ = inp.read(ShardSpec.from_dict(old))
        assert [r["n"] for r in rows] == list(range(shard.row_offset, shard.row_offset + 4))[
            : shard.row_count
        ]


def test_a_shard_size_known_before_opening_gives_exact_ranges(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [{"text": f"t{i}"} for i in range(20_000)])
    coarse = open_input(spec(), str(path)).shards(777)
    assert any(s.skip_rows is not None for s in coarse)
    hinted = open_input(spec(), str(path), rows_per_shard=777)
    shards = hinted.shards(777)
    assert all(s.skip_rows is None for s in shards)
    assert [(s.row_offset, s.row_count) for s in shards] == [
        (s.row_offset, s.row_count) for s in coarse
    ]
    assert all(a.byte_end == b.byte_start for a, b in itertools.pairwise(shards))
    # Another size still works from the same index.
    assert sum(s.row_count for s in hinted.shards(1_000)) == 20_000
    with pytest.raises(InputError, match=r"rows_per_shard must be positive \(got 0\)"):
        open_input(spec(), str(path), rows_per_shard=0)
