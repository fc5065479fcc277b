"""Fuzz the data reader with a few hundred malformed files: whatever comes in, core.data, core.datacheck
and `studio data check` answer with DataError or a report, never a traceback, and name the line (and
field) wherever the file's maker could know it. The generator is seeded and needs nothing beyond the
project's own dependencies."""
from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import gzip
import io
import json
import random
import zlib
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from core.cli import main
from core.data import FORMATS, DataError, load_dataset, parse_dataset
from core.datacheck import check_dataset

SEED = 20240611


@dataclass
class Case:
    name: str  # the file name; its suffix picks the reader
    content: bytes
    line: int | None = None  # where the problem is, when the file's maker knows it
    field: str | None = None
    kind: str = ""
    clean: bool = False  # a valid file: no error in the report


def _rows(rng: random.Random, n: int = 12) -> list[dict]:
    words = ["alpha", "beta", "gamma", "delta", "päckchen", "日本語", "emoji 🎉", "tab\there", "quote \"x\""]
    return [{"input_text": f"{rng.choice(words)} {i} {rng.choice(words)}", "output_text": rng.choice(["yes", "no"])}
            for i in range(n)]


def _jsonl(lines: list[str], rng: random.Random, bad: int) -> tuple[bytes, int]:
    """The lines joined, with blank lines sprinkled in before the bad one; (content, its 1-based line)."""
    out, line = [], None
    for i, text in enumerate(lines):
        if rng.random() < 0.15:
            out.append("")
        out.append(text)
        if i == bad:
            line = len(out)
    return ("\n".join(out) + "\n").encode(), line


def _with_bad_row(rng, name: str, bad_obj_text: str, kind: str, field: str | None = None, n: int = 12) -> Case:
    rows = [json.dumps(r, ensure_ascii=rng.random() < 0.5) for r in _rows(rng, n)]
    k = rng.randrange(1 if bad_obj_text.startswith("\ufeff") else 0, n)  # a BOM opening the file is allowed
    rows[k] = bad_obj_text
    content, line = _jsonl(rows, rng, k)
    return Case(name, content, line, field, kind)


def _gz(case: Case) -> Case:
    return Case(case.name + ".gz", gzip.compress(case.content, mtime=0), case.line, case.field, case.kind + "+gz",
                case.clean)


def _parquet(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def json_cases(rng: random.Random) -> list[Case]:
    cases = []
    for depth in (1500, 5000, 100_000):
        for wrap in ("{{\"input_text\": {}, \"output_text\": \"a\"}}", "{}"):
            deep = "[" * depth + "]" * depth
            cases.append(_with_bad_row(rng, "deep.jsonl", wrap.format(deep), "deep nesting"))
    for digits in (4301, 5000, 20_000):
        cases.append(_with_bad_row(rng, "bigint.jsonl", f'{{"input_text": "a", "output_text": {"7" * digits}}}',
                                   "huge integer"))
    for _ in range(6):
        code = rng.randrange(0xD800, 0xE000)
        field = rng.choice(["input_text", "output_text"])
        other = "output_text" if field == "input_text" else "input_text"
        cases.append(_with_bad_row(rng, "surrogate.jsonl", f'{{"{field}": "a\\u{code:04x}b", "{other}": "x"}}',
                                   "lone surrogate", field))
    cases.append(_with_bad_row(rng, "surrogate_key.jsonl", '{"input_text": "a", "output_text": "b", "\\ud800": 1}',
                               "lone surrogate in a key"))
    wrong = [("12345", "number"), ("-7", "number"), ("3.25", "number"), ("true", "boolean"), ("false", "boolean"),
             ("Infinity", "infinity"), ("-Infinity", "infinity"), ("1e400", "infinity"), ("NaN", "nan"),
             ("null", "null"), ('["a", "b"]', "list"), ('{"a": 1}', "object"), ('""', "empty"), ('"   "', "blank")]
    for value, what in wrong:
        for field in ("input_text", "output_text"):
            other = "output_text" if field == "input_text" else "input_text"
            cases.append(_with_bad_row(rng, "types.jsonl", f'{{"{field}": {value}, "{other}": "x"}}',
                                       f"wrong type: {what}", field))
    for _ in range(3):
        field = rng.choice(["input_text", "output_text"])
        keep = "output_text" if field == "input_text" else "input_text"
        cases.append(_with_bad_row(rng, "missing.jsonl", json.dumps({keep: "x"}), "missing field", field))
    broken = ['{"input_text": "a", "output_text": "b"', '{"input_text": "a", "output_text": "b",}',
              "{'input_text': 'a', 'output_text': 'b'}", '{input_text: "a", output_text: "b"}',
              '{"input_text": "a", "output_text": "b"} {"x": 1}', '// a comment',
              '{"input_text": "a\x00", "output_text": "b"}', '{"input_text": "a\tb", "output_text": "b"}',
              'input_text,output_text', '\ufeff{"input_text": "a", "output_text": "b"}',
              '{"input_text": "a", "output_text": "b"}}', '{"input_text": "\\x41", "output_text": "b"}', '{"a" 1}',
              "{", '{"input_text": "a", "output_text": "b\\"}', '{"input_text": 01, "output_text": "b"}', "<html>",
              "}{"]
    for text in broken:
        cases.append(_with_bad_row(rng, "syntax.jsonl", text, "invalid JSON"))
    for text in ('["a", "b"]', '"just text"', "42", "null", "true", "[]", '[{"input_text": "a", "output_text": "b"}]'):
        case = _with_bad_row(rng, "notobject.jsonl", text, "not an object")
        if case.line == 1 and text.startswith("["):
            case.line = None  # a first line opening with [ makes the whole file one JSON array
        cases.append(case)
    for key in ("output_text", "input_text"):
        cases.append(_with_bad_row(rng, "dupkey.jsonl", f'{{"input_text": "a", "output_text": "b", "{key}": "c"}}',
                                   "duplicated key", key))
    for _ in range(3):  # bytes no encoding reads, on a known line
        rows = [json.dumps(r) for r in _rows(rng)]
        k = rng.randrange(12)
        content, line = _jsonl(rows, rng, k)
        at = content.split(b"\n")
        at[line - 1] = at[line - 1].replace(b'"input_text": "', b'"input_text": "\x81\x8d', 1)
        cases.append(Case("undecodable.jsonl", b"\n".join(at), line, None, "undecodable bytes"))
    for ch in ("\u2028", "\u2029", "\x85", "\x1c", "\x0b"):
        rows = _rows(rng)
        rows[rng.randrange(12)]["input_text"] += f" with{ch}break"
        content = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
        clean = ch in "\u2028\u2029\x85"
        cases.append(Case("separators.jsonl", content, kind="line separator in a string", clean=clean))
    for sep in ("\r\n", "\r"):
        rows = [json.dumps(r) for r in _rows(rng)]
        cases.append(Case("newlines.jsonl", (sep.join(rows) + sep).encode(), kind="CR line ends", clean=True))
    return cases


def encoding_cases(rng: random.Random) -> list[Case]:
    cases = []
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in _rows(rng))
    nlines = text.count("\n")
    for codec, bom in (("utf-16-le", b"\xff\xfe"), ("utf-16-be", b"\xfe\xff")):
        body = bom + text.encode(codec)
        cases.append(Case("utf16.jsonl", body, kind="UTF-16 with BOM", clean=True))
        sur = b"\x00\xd8" if codec == "utf-16-le" else b"\xd8\x00"  # a lone high surrogate
        for extra in (b"x", b"\x01\x02\x03", sur):
            cases.append(Case("utf16odd.jsonl", body + extra, nlines + 1, None, "UTF-16 odd length"))
        lines = text.split("\n")  # a lone high surrogate in the middle of line 3
        head = "\n".join(lines[:2]) + "\n" + lines[2][:5]
        cases.append(Case("utf16sur.jsonl", bom + head.encode(codec) + sur + "\n".join(lines[2:]).encode(codec)[10:],
                          3, None, "UTF-16 lone surrogate"))
    cases.append(Case("utf32.jsonl", b"\xff\xfe\x00\x00" + text.encode("utf-32-le"), kind="UTF-32", clean=True))
    for suffix in (".jsonl", ".json", ".csv", ".tsv"):
        for content, what in ((b"", "empty"), (b"\n\n  \n", "whitespace"), (b"\xef\xbb\xbf", "UTF-8 BOM only"),
                              (b"\xff\xfe", "UTF-16 BOM only"), (b"\xfe\xff", "UTF-16 BE BOM only"),
                              (b"\xef\xbb\xbf\n\n", "BOM and blank lines"), (b"\x00" * 64, "NUL bytes"),
                              (b"\xff\xfe\x00\x00", "UTF-32 BOM only")):
            cases.append(Case("empty" + suffix, content, kind=what))
        for i in range(3):
            junk = bytes(rng.randrange(256) for _ in range(rng.choice([1, 17, 600, 5000])))
            cases.append(Case(f"junk{i}{suffix}", junk, kind="binary junk"))
    return cases


def gzip_cases(rng: random.Random) -> list[Case]:
    cases = []
    good = "".join(json.dumps(r) + "\n" for r in _rows(rng)).encode()
    packed = gzip.compress(good, mtime=0)
    for cut in (1, 9, 20, len(packed) // 2, len(packed) - 4, len(packed) - 1):
        cases.append(Case("truncated.jsonl.gz", packed[:cut], kind="truncated gzip"))
    for _ in range(4):
        corrupt = bytearray(packed)
        i = rng.randrange(12, len(packed) - 8)
        corrupt[i] ^= 0xFF
        cases.append(Case("corrupt.jsonl.gz", bytes(corrupt), kind="corrupt gzip"))
    cases.append(Case("notgzip.jsonl.gz", good, kind="not gzip"))
    cases.append(Case("emptygz.jsonl.gz", gzip.compress(b"", mtime=0), kind="gzip of nothing"))
    cases.append(Case("zlib.csv.gz", zlib.compress(b"input_text,output_text\na,b\n"), kind="zlib not gzip"))
    cases.append(Case("double.jsonl.gz", gzip.compress(packed, mtime=0), kind="gzip twice"))
    cases.append(_gz(_with_bad_row(rng, "gz.jsonl", '{"input_text": 5, "output_text": "x"}', "gz wrong type",
                                   "input_text")))
    return cases


def csv_cases(rng: random.Random) -> list[Case]:
    cases = []
    for sep, suffix in ((",", ".csv"), ("\t", ".tsv"), (";", ".csv")):
        for _ in range(4):  # an unbalanced quote opening a field on a known line, after quoted line breaks
            lines, physical = ["input_text" + sep + "output_text"], 1
            k = rng.randrange(3, 11)
            bad_line = None
            for i in range(12):
                if i == k:
                    row = f'"never closed{sep} here' + sep + "b"
                    bad_line = physical + 1
                elif i < k and rng.random() < 0.3:  # quoted line breaks before it (after it they would close it)
                    row = f'"two\nlines {i}"' + sep + "a"
                else:
                    row = f"plain {i}" + sep + "a"
                lines.append(row)
                physical += row.count("\n") + 1
            cases.append(Case("quote" + suffix, ("\n".join(lines) + "\n").encode(), bad_line, None, "unbalanced quote"))
        for _ in range(3):  # a row with one field too many
            k = rng.randrange(1, 12)
            rows = ["input_text" + sep + "output_text"] + [f"t{i}{sep}a" + (f"{sep}extra" if i == k else "")
                                                          for i in range(12)]
            blank = rng.randrange(1, k + 1)
            rows.insert(blank, "")  # a blank line before it shifts editor lines, not pandas' rows
            cases.append(Case("extra" + suffix, ("\n".join(rows) + "\n").encode(), k + 3, None, "extra field"))
        rows = ["input_text" + sep + "output_text"] + [f"t{i}{sep}a{sep}more" for i in range(12)]
        cases.append(Case("allwide" + suffix, ("\n".join(rows) + "\n").encode(), 2, None, "every row too wide"))
        k = rng.randrange(12)
        rows = ["input_text" + sep + "output_text"] + [f"t{i}{sep}a" if i != k else f"t{i}" for i in range(12)]
        cases.append(Case("short" + suffix, ("\n".join(rows) + "\n").encode(), k + 2, "output_text", "missing field"))
        cases.append(Case("header" + suffix, f"input_text{sep}output_text\n".encode(), kind="header only"))
        cases.append(Case("dupheader" + suffix, f"input_text{sep}output_text{sep}output_text\na{sep}b{sep}c\n".encode(),
                          1, "output_text", "duplicated column"))
    wrong = "input_text;output_text\n" + "".join(f"t{i};a\n" for i in range(12))
    cases.append(Case("semicolons.tsv", wrong.encode(), kind="wrong delimiter"))
    cases.append(Case("pipes.csv", wrong.replace(";", "|").encode(), kind="pipe delimiter", clean=True))
    cases.append(Case("mixed.csv", ("input_text,output_text\n" + "a;b\n" * 6 + "c,d\n" * 6).encode(),
                      kind="mixed delimiters"))
    huge = "x" * 300_000
    cases.append(Case("hugefield.csv", f'input_text,output_text\n"{huge}",a\n'.encode() + b"t,b\n" * 11,
                      kind="huge field", clean=True))
    cases.append(Case("hugequote.csv", f'input_text,output_text\nt,a\n"{huge},a\n'.encode(), 3, None,
                      "huge unclosed field"))
    cases.append(Case("nul.csv", b"input_text,output_text\n" + b"a\x00b,c\n" * 12, kind="NUL in CSV"))
    cases.append(Case("jsonl_as.csv", "".join(json.dumps(r) + "\n" for r in _rows(rng)).encode(), kind="JSONL in .csv"))
    cases.append(Case("bare_cr.csv", b"input_text,output_text\r" + b"a,b\r" * 12, kind="CR-only CSV", clean=True))
    cases.append(Case("crlf.csv", b"input_text,output_text\r\n" + b"a,b\r\n" * 12, kind="CRLF CSV", clean=True))
    cases.append(Case("onlyquotes.csv", b'"""""""\n' * 5, kind="quotes only"))
    cases.append(Case("bomheader.csv", b"\xef\xbb\xbf\xef\xbb\xbfinput_text,output_text\na,b\n", kind="two BOMs"))
    return cases


def json_array_cases(rng: random.Random) -> list[Case]:
    cases = []
    for _ in range(4):
        rows = _rows(rng)
        k = rng.randrange(12)
        items = [json.dumps(r) for r in rows]
        items[k] = rng.choice(['"text"', "7", "null", "[1, 2]", "true"])
        text = "[\n" + ",\n".join(items) + "\n]\n"
        cases.append(Case("array.json", text.encode(), k + 2, None, "array item not an object"))
        items[k] = "[" * 3000 + "]" * 3000
        cases.append(Case("array_deep.json", ("[\n" + ",\n".join(items) + "\n]\n").encode(), k + 2, None,
                          "array item too deep"))
        items[k] = '{"input_text": "a", "output_text": ' + "1" * 5000 + "}"
        cases.append(Case("array_bigint.json", ("[\n" + ",\n".join(items) + "\n]\n").encode(), k + 2, None,
                          "array item huge integer"))
        items[k] = json.dumps({"input_text": "a"})
        cases.append(Case("array_missing.json", ("[\n" + ",\n".join(items) + "\n]\n").encode(), k + 1, "output_text",
                          "array item missing field"))  # a row's line in an array is its item number
    good = json.dumps(_rows(rng), indent=2)
    for cut in (1, 10, len(good) // 2, len(good) - 1):
        cases.append(Case("array_cut.json", good[:cut].encode(), kind="array cut off"))
    cases.append(Case("array_trailing.json", (good + "\n{}\n").encode(), good.count("\n") + 2, None,
                      "text after array"))
    cases.append(Case("array_comma.json", (good[:-1].rstrip() + ",\n]").encode(), kind="trailing comma"))
    cases.append(Case("array_empty.json", b"[]", kind="empty array"))
    cases.append(Case("array_nested.json", json.dumps([_rows(rng)]).encode(), 1, None, "array of arrays"))
    cases.append(Case("object.json", json.dumps({"data": _rows(rng)}).encode(), kind="object, not array"))
    cases.append(Case("mixed.jsonl", (json.dumps(_rows(rng, 2)) + "\n" + json.dumps(_rows(rng, 1)[0]) + "\n").encode(),
                      2, None, "array then JSONL"))
    return cases


def chat_cases(rng: random.Random) -> list[Case]:
    cases = []
    good_contents = [{"role": "user", "parts": [{"text": "Hi"}]}, {"role": "model", "parts": [{"text": "Hello"}]}]
    good_messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]

    def chat_file(name, bad, kind, field):
        good = [json.dumps({"contents": good_contents} if "contents" in bad else {"messages": good_messages})
                for _ in range(12)]
        k = rng.randrange(12)
        good[k] = json.dumps(bad)
        content, line = _jsonl(good, rng, k)
        return Case(name, content, line, field, kind)

    for parts, field in ((None, "contents[1].parts"), (7, "contents[1].parts"), ("text", "contents[1].parts"),
                         ({"text": "x"}, "contents[1].parts"), ([{"text": 5}], "contents[1].parts[1].text"),
                         ([{"text": None}], "contents[1].parts[1].text"), (["hello"], "contents[1].parts[1]"),
                         ([None], "contents[1].parts[1]"), ([], "contents[1].parts"),
                         ([{"text": {"nested": 1}}], "contents[1].parts[1].text")):
        cases.append(chat_file("parts.jsonl", {"contents": [{"role": "user", "parts": parts}, good_contents[1]]},
                               f"parts {str(parts)[:20]}", field))
    for system, field in (({"parts": None}, "systemInstruction.parts"), ({"parts": 5}, "systemInstruction.parts"),
                          ({"parts": [{"text": 1.5}]}, "systemInstruction.parts[1].text"), (7, "systemInstruction"),
                          ([1, 2], "systemInstruction")):
        cases.append(chat_file("system.jsonl", {"systemInstruction": system, "contents": good_contents},
                               f"systemInstruction {system}", field))
    for turn, field in (({"role": "user", "content": 5}, "messages[1].content"),
                        ({"role": "user", "content": ["a"]}, "messages[1].content"),
                        ({"role": "user", "content": None}, "messages[1].content"),
                        ({"role": "user", "content": "a\ud800"}, "messages[1].content"),
                        ({"role": 5, "content": "x"}, "messages[1].role"),
                        ({"role": None, "content": "x"}, "messages[1].role"),
                        ({"content": "x"}, "messages[1].role"), ("just text", "messages[1]"), (None, "messages[1]"),
                        (["user", "x"], "messages[1]")):
        cases.append(chat_file("messages.jsonl", {"messages": [turn, good_messages[1]]}, f"turn {str(turn)[:20]}",
                               field))
    for messages, kind in (([{"role": "assistant", "content": "I answer nobody"}], "assistant only"),
                           ([{"role": "system", "content": "S"}, {"role": "assistant", "content": "A"}],
                            "system then assistant"),
                           ([{"role": "user", "content": "Q"}], "user only"), ([], "no turns"), (None, "null"),
                           ("hello", "string"), (5, "number"), ({"role": "user"}, "object")):
        cases.append(chat_file("convo.jsonl", {"messages": messages}, kind, "messages"))
    return cases


def preference_cases(rng: random.Random) -> list[Case]:
    cases = []
    for choice, ok in ((2, False), ("x", False), (None, True), (True, False), (0.5, False), (-1, False),
                       ([1], False), (1.0, True), ("1", True), (0, True), (" 0 ", True), ("1.0", True)):
        rows = [json.dumps({"input_text": f"q{i}", "candidate_0": "a", "candidate_1": "b", "choice": 1})
                for i in range(12)]
        k = rng.randrange(12)
        rows[k] = json.dumps({"input_text": "q", "candidate_0": "a", "candidate_1": "b", "choice": choice})
        content, line = _jsonl(rows, rng, k)
        if ok:
            cases.append(Case("prefs.jsonl", content, kind=f"choice {choice!r}", clean=True))
        else:
            cases.append(Case("prefs.jsonl", content, line, "choice", f"choice {choice!r}"))
    for field in ("prompt", "chosen", "rejected"):
        rows = [json.dumps({"prompt": f"q{i}", "chosen": "y", "rejected": "n"}) for i in range(12)]
        k = rng.randrange(12)
        bad = {"prompt": "q", "chosen": "y", "rejected": "n"}
        bad[field] = rng.choice([[1], {"a": 1}, None, float("inf")]) if field != "prompt" else None
        rows[k] = json.dumps(bad)
        content, line = _jsonl(rows, rng, k)
        cases.append(Case("dpo.jsonl", content, line, field, f"dpo {field}"))
    return cases


def parquet_cases(rng: random.Random) -> list[Case]:
    cases = []
    n = 12
    texts = [f"text {i}" for i in range(n)]

    def one_bad(values: list, k: int, typ=None) -> pa.Table:
        return pa.table({"input_text": pa.array(texts), "output_text": pa.array(values, type=typ)})

    k = rng.randrange(1, n)
    cases.append(Case("ints.parquet", _parquet(one_bad(list(range(n)), k)), 1, "output_text", "int labels"))
    floats = [1.5] * n
    floats[k] = float("nan")
    cases.append(Case("floats.parquet", _parquet(one_bad(floats, k)), 1, "output_text", "float labels"))
    cases.append(Case("inf.parquet", _parquet(pa.table({"input_text": pa.array(texts), "output_text": pa.array(
        [float("inf")] + [1.0] * (n - 1))})), 1, "output_text", "infinite number"))
    nullable = pa.array([None if i == k else i % 2 for i in range(n)], type=pa.int64())
    cases.append(Case("nullable.parquet", _parquet(one_bad(nullable.to_pylist(), k, pa.int64())), k + 1,
                      "output_text", "nullable int"))
    lists = [["a", "b"]] * n
    cases.append(Case("lists.parquet", _parquet(one_bad(lists, k)), 1, "output_text", "list column"))
    structs = [{"x": i} for i in range(n)]
    cases.append(Case("structs.parquet", _parquet(one_bad(structs, k)), 1, "output_text", "struct column"))
    cases.append(Case("binary.parquet", _parquet(one_bad([b"\x00\xff"] * n, k, pa.binary())), 1, "output_text",
                      "binary column"))
    cases.append(Case("bools.parquet", _parquet(one_bad([i % 2 == 0 for i in range(n)], k)), 1, "output_text",
                      "bool column"))
    cases.append(Case("nulls.parquet", _parquet(one_bad([None] * n, k, pa.null())), 1, "output_text", "null column"))
    cases.append(Case("dates.parquet", _parquet(one_bad([dt.datetime(2024, 1, 1)] * n, k)), 1, "output_text",
                      "timestamp column"))
    cases.append(Case("decimals.parquet", _parquet(one_bad([decimal.Decimal("1.50")] * n, k)), 1, "output_text",
                      "decimal column"))
    dict_col = pa.array(["yes", "no"] * (n // 2)).dictionary_encode()
    cases.append(Case("dict.parquet", _parquet(pa.table({"input_text": texts, "output_text": dict_col})),
                      kind="dictionary strings", clean=True))
    cases.append(Case("large.parquet", _parquet(pa.table({"input_text": pa.array(texts, pa.large_string()),
                                                          "output_text": pa.array(["a"] * n, pa.large_string())})),
                      kind="large strings", clean=True))
    msgs = [[{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}] for i in range(n)]
    cases.append(Case("chat.parquet", _parquet(pa.table({"messages": msgs})), kind="chat list<struct>", clean=True))
    bad_msgs = list(msgs)
    bad_msgs[k] = [{"role": "assistant", "content": "a"}]
    cases.append(Case("chat_bad.parquet", _parquet(pa.table({"messages": bad_msgs})), k + 1, "messages",
                      "chat assistant only"))
    choice = pa.array([None if i == k else 1 for i in range(n)], type=pa.int8())
    prefs = pa.table({"input_text": texts, "candidate_0": ["a"] * n, "candidate_1": ["b"] * n, "choice": choice})
    cases.append(Case("prefs.parquet", _parquet(prefs), kind="nullable choice: a pair to label", clean=True))
    prefs_f = prefs.set_column(3, "choice", pa.array([float(i % 2) for i in range(n)]))
    cases.append(Case("prefs_float.parquet", _parquet(prefs_f), kind="float choice", clean=True))
    good = _parquet(pa.table({"input_text": texts, "output_text": ["a"] * n}))
    for cut in (4, len(good) // 2, len(good) - 8, len(good) - 1):
        cases.append(Case("cut.parquet", good[:cut], kind="truncated parquet"))
    cases.append(Case("zero.parquet", _parquet(pa.table({"input_text": pa.array([], pa.string()),
                                                         "output_text": pa.array([], pa.string())})), kind="no rows"))
    cases.append(Case("nocols.parquet", _parquet(pa.table({})), kind="no columns"))
    dup = pa.Table.from_arrays([pa.array(texts), pa.array(["a"] * n), pa.array(["b"] * n)],
                               names=["input_text", "output_text", "output_text"])
    cases.append(Case("dupcols.parquet", _parquet(dup), None, "output_text", "duplicate columns"))
    cases.append(Case("json_as.parquet", "".join(json.dumps(r) + "\n" for r in _rows(rng)).encode(),
                      kind="JSONL named .parquet"))
    cases.append(Case("parquet_as.jsonl", good, kind="Parquet named .jsonl"))
    return cases


def generate_cases(seed: int = SEED) -> list[Case]:
    rng = random.Random(seed)
    cases = []
    for make in (json_cases, encoding_cases, gzip_cases, csv_cases, json_array_cases, chat_cases, preference_cases,
                 parquet_cases):
        cases += make(rng)
    cases += [_gz(c) for c in rng.sample([c for c in cases if not c.name.endswith(".gz")], 30)]
    return cases


def test_no_malformed_file_escapes_as_anything_but_data_error(tmp_path):
    cases = generate_cases()
    crashes, unlocated, dirty, located, locatable, crashed_files = [], [], [], 0, 0, set()
    for i, case in enumerate(cases):
        path = tmp_path / f"{i:03d}_{case.name}"
        path.write_bytes(case.content)

        def attempt(what, fn):
            try:
                return fn()
            except DataError as e:
                return e
            except BaseException as e:  # noqa: BLE001 — this is what the fuzz looks for
                crashed_files.add(path.name)
                crashes.append(f"{path.name} [{case.kind}] {what}: {type(e).__name__}: {str(e)[:120]}")
                return None

        attempt("load_dataset", lambda: load_dataset(path))
        attempt("load_dataset unlabeled", lambda: load_dataset(path, require_output=False))
        for fmt in FORMATS:
            attempt(f"parse_dataset format={fmt}", lambda: parse_dataset(path, format=fmt, require_output=False))
        attempt("parse_dataset columns", lambda: parse_dataset(path, "input_text", "output_text"))
        report = attempt("check_dataset", lambda: check_dataset(path))
        attempt("check_dataset classification", lambda: check_dataset(path, task="classification"))
        attempt("check_dataset forced format",
                lambda: check_dataset(path, format=FORMATS[i % len(FORMATS)], task="classification"))
        for extra in ([], ["--task", "classification"]):
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                rc = attempt(f"studio data check {' '.join(extra)}", lambda: main(["data", "check", str(path),
                                                                                     "--json", *extra]))
            if rc is None:
                continue
            if rc not in (0, 1):
                crashes.append(f"{path.name} [{case.kind}] CLI exit code {rc!r}")
                continue
            printed = json.loads(out.getvalue())
            if (rc == 0) != printed["usable"]:
                crashes.append(f"{path.name} [{case.kind}] CLI exit {rc} but usable={printed['usable']}")
            if printed["format"] is None and rc == 1 and not printed.get("error"):
                crashes.append(f"{path.name} [{case.kind}] CLI: an unreadable file without `error`")
        problems = report["problems"] if isinstance(report, dict) else []
        if case.clean and (not isinstance(report, dict) or any(
                p["level"] == "error" and p["kind"] != "too few examples" for p in problems)):
            dirty.append(f"{path.name} [{case.kind}]: {problems[0]['message'][:160] if problems else report!r}")
        if case.line is not None or case.field is not None:  # the file's maker knows where the problem is
            locatable += 1
            if any((case.line is None or p.get("line") == case.line)
                   and (case.field is None or p.get("field") == case.field) for p in problems):
                located += 1
            else:
                got = [(p["line"], p["field"], p["message"][:100]) for p in problems[:3]]
                unlocated.append(f"{path.name} [{case.kind}] want line {case.line} field {case.field}: {got}")
    summary = (f"{len(cases)} malformed files: {len(crashed_files)} crash ({len(crashes)} calls), "
               f"{located} of {locatable} name the known line/field, {len(dirty)} valid files rejected")
    print(summary)
    assert len(cases) >= 300, summary
    assert not crashes, summary + "\n" + "\n".join(crashes[:40])
    assert not unlocated, summary + "\n" + "\n".join(unlocated[:40])
    assert not dirty, summary + "\n" + "\n".join(dirty[:40])
    assert located == locatable


def test_the_generator_is_deterministic():
    a, b = generate_cases(), generate_cases()
    assert [(c.name, c.content, c.line, c.field) for c in a] == [(c.name, c.content, c.line, c.field) for c in b]
