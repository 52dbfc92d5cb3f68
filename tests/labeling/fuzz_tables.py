"""Hypothesis strategies for the import fuzz tests: a valid table with one or two mutations (a cell, a column, a
row, the delimiter, line ends, encoding, a cut), or plain noise; and the check that a problem line says where."""

import csv
import io

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# Bounded and reproducible, as CI needs; the database and the media folder are shared by a test's examples.
FUZZ = settings(max_examples=30, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

ODD_CELLS = [
    "", " ", "nan", "NaN", "inf", "-inf", "1e309", "-1", "-0", "0", "1", "1.5", "2.0", "361", "-91", "90.0001",
    "abc", "１２", "٣", "0x1F", "1_000", " 7 ", '"', "a,b", "semi;colon", "line\nbreak", "é😀\u202e", "\x00",
    "nul\x00inside", "x" * 5000, "9" * 400, "../../etc/passwd", "/abs/path.png", "images", ".", "..",
]
ODD_ENCODINGS = ["utf-8-sig", "latin-1", "utf-16", "cp1252"]


def cells(extra: list[str] = ()) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from([*ODD_CELLS, *extra]), st.text(max_size=30))


@st.composite
def edited(draw, header: list[str], rows: list[list[str]], *, extra_cells: list[str] = ()) -> tuple[list, list]:
    """The table after zero to two edits of its cells, columns or rows (zero: the valid table itself)."""
    header, rows = list(header), [list(row) for row in rows]
    for _ in range(draw(st.integers(0, 2))):
        kind = draw(st.sampled_from(["cell"] * 8 + ["drop column", "repeat column", "extra column", "rename column",
                                                  "repeat row", "drop rows", "short row", "long row"]))
        column = draw(st.integers(0, len(header) - 1)) if header else 0
        row = draw(st.integers(0, len(rows) - 1)) if rows else 0
        if kind == "cell" and rows and header:
            rows[row] += [""] * (column + 1 - len(rows[row]))
            rows[row][column] = draw(cells(extra_cells))
        elif kind == "drop column" and header:
            del header[column]
            for fields in rows:
                del fields[column:column + 1]
        elif kind == "repeat column" and header:
            header.append(header[column])
            for fields in rows:
                fields.append(fields[column] if column < len(fields) else "")
        elif kind == "extra column":
            header.append(draw(cells()))
            for fields in rows:
                fields.append(draw(cells(extra_cells)))
        elif kind == "rename column" and header:
            header[column] = draw(cells())
        elif kind == "repeat row" and rows:
            rows.append(list(rows[row]))
        elif kind == "drop rows":
            rows = rows[:draw(st.integers(0, max(0, len(rows) - 1)))]
        elif kind == "short row" and rows:
            rows[row] = rows[row][:column]
        elif kind == "long row" and rows:
            rows[row].append(draw(cells()))
    return header, rows


@st.composite
def serialised(draw, header: list[str], rows: list[list[str]]) -> bytes:
    """The table as file bytes: mostly a plain UTF-8 CSV, sometimes with another delimiter, line end or encoding,
    a byte-order mark, or cut short."""
    out = io.StringIO()
    # Each variation one time in eight: more often, every file would fail on its header and no row would be read.
    delimiter = draw(st.sampled_from([";", "\t"])) if draw(st.integers(0, 7)) == 0 else ","
    ending = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    csv.writer(out, delimiter=delimiter, lineterminator=ending).writerows([header, *rows])
    encoding = draw(st.sampled_from(ODD_ENCODINGS)) if draw(st.integers(0, 7)) == 0 else "utf-8"
    data = out.getvalue().encode(encoding, errors="replace")
    if draw(st.integers(0, 7)) == 0:
        data = data[:draw(st.integers(0, len(data)))]
    return data


def noise(header: list[str]) -> st.SearchStrategy[bytes]:
    """Bytes with no table in them, or the right header above garbage."""
    garbage = st.one_of(st.binary(max_size=600), st.text(max_size=300).map(lambda text: text.encode("utf-8")))
    top = ",".join(header).encode() + b"\n"
    return st.one_of(garbage, garbage.map(lambda tail: top + tail))


def table_files(header: list[str], rows: list[list[str]], *, extra_cells: list[str] = ()) -> st.SearchStrategy:
    """A valid table with an edit or two (nine times in ten: it reaches the row checks), or noise."""
    near_valid = edited(header, rows, extra_cells=extra_cells).flatmap(lambda table: serialised(*table))
    return st.integers(0, 9).flatmap(lambda dice: noise(header) if dice == 0 else near_valid)


# A problem about the whole file names no row or column; these are the only ones allowed to.
WHOLE_FILE = ("not UTF-8 text", "not a readable", "the file is empty", "no data rows", "no rows", "no images to "
              "import", "not an HDF5 file", "no such file")


def says_where(line: str, file_name: str) -> bool:
    """Whether a problem line names the file, and the row, the column or the header at fault (or is about the
    whole file)."""
    placed = any(word in line for word in ("row ", "column ", "header")) or any(p in line for p in WHOLE_FILE)
    return file_name in line and placed


def decoded_rows(data: bytes) -> tuple[list[str], list[list[str]]]:
    """The header and non-blank rows of a UTF-8 CSV as an importer reads them, cells stripped."""
    reader = csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""))
    table = [[cell.strip() for cell in fields] for fields in reader if fields]
    return (table[0], table[1:]) if table else ([], [])
