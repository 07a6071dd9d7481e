"""CSV import of customers and orders, with every bad row reported by line number and reason.

A mapping (attrs data, so it can be saved and reloaded with `crmcore.serialization`) names the
CSV column behind each field. `import_customers` and `import_orders` read the file a batch at a
time, normalize what they read (trimmed text, emails via email-validator, phones in E.164), check
the CRM's data rules row by row, look for duplicates in the store and in the file with one query
per batch rather than per row, and store either everything or nothing
(`ImportMode.ALL_OR_NOTHING`) or every good row (`ImportMode.SKIP_BAD_ROWS`, committed batch by
batch).
"""

from __future__ import annotations

import codecs
import csv
import enum
import functools
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from crmcore.conditions import Condition, Field
from crmcore.customers.contact_points import Address, EmailAddress, PhoneNumber, normalize_email, primary
from crmcore.customers.contact_points import phone_region as _phone_region
from crmcore.customers.customer import Customer, CustomerKind, LifecycleStage
from crmcore.customers.order import Order, OrderLine, OrderStatus, SalesChannel
from crmcore.customers.schema import CustomFieldType
from crmcore.errors import FieldError, ValidationError
from crmcore.ids import check_id, new_id
from crmcore.money import Money, check_currency
from crmcore.validation import checked, instance_of, one_of, optional, run_checks, text, tuple_of

if TYPE_CHECKING:  # the facade imports this package, so only type checkers import it here
    from crmcore.facade import CRM
    from crmcore.storage.base import Repository, UnitOfWork

__all__ = [
    "AddressColumns",
    "CustomColumn",
    "CustomerMapping",
    "DuplicatePolicy",
    "DuplicateRow",
    "EmailColumn",
    "ImportMode",
    "ImportReport",
    "OrderMapping",
    "PhoneColumn",
    "ProgressCallback",
    "RowError",
    "Source",
    "import_customers",
    "import_orders",
]

T = TypeVar("T")
Source = str | os.PathLike[str] | Iterable[str]
"""A CSV file's path, an open text file, or any iterable of lines (``io.StringIO(text)`` too)."""
ProgressCallback = Callable[[int, int | None], None]
"""Called as ``on_progress(rows_done, rows_total)``; the total is None unless the source is a path."""

_QUERY_CHUNK = 500  # values per IN (...) lookup: well under every database's parameter limit


class ImportMode(enum.Enum):
    """What happens to the good rows when some rows are bad."""

    ALL_OR_NOTHING = "all_or_nothing"
    """One transaction: any bad row and nothing is stored (every bad row is still reported)."""
    SKIP_BAD_ROWS = "skip_bad_rows"
    """Good rows are stored, committed batch by batch; bad rows are reported and left out."""


class DuplicatePolicy(enum.Enum):
    """What to do with a row whose email or phone a stored customer or an earlier row already has."""

    SKIP = "skip"
    """Leave the row out and list it in the report's ``duplicates``."""
    REPORT = "report"
    """Store it anyway and list it in ``duplicates`` (report only, e.g. for a later merge)."""
    ADD = "add"
    """Store it without looking for duplicates at all (no lookups; nothing listed)."""
    ERROR = "error"
    """Treat the row as bad: a `RowError` (so ``ALL_OR_NOTHING`` stores nothing)."""


# --- mapping -----------------------------------------------------------------------------------

_column = text(max_length=200, required=True)
_optional_column = optional(_column)
_label = text(max_length=40)
_CUSTOM_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}\Z")


def _custom_key(value: Any, path: str) -> str:
    key: str = text(max_length=63, required=True)(value, path)
    if not _CUSTOM_KEY.match(key):
        raise ValidationError(path, f"{key!r} must be letters, digits and _ (not first a digit)")
    return key


def _date_format(value: Any, path: str) -> str | None:
    if value is None:
        return None
    fmt: str = text(max_length=100, required=True, strip=False)(value, path)
    if "%" not in fmt:
        raise ValidationError(
            path, f"{fmt!r} is not a strftime format (e.g. '%d.%m.%Y'); None means ISO 8601"
        )
    return fmt


def _delimiter(value: Any, path: str) -> str:
    if not isinstance(value, str) or len(value) != 1 or value in '"\r\n':
        raise ValidationError(path, f"must be one character other than a quote or newline, got {value!r}")
    return value


def _encoding(value: Any, path: str) -> str:
    name: str = text(max_length=40, required=True)(value, path)
    try:
        codecs.lookup(name)
    except LookupError:
        raise ValidationError(path, f"{name!r} is not an encoding Python knows") from None
    return name


def _separator(value: Any, path: str) -> str:
    sep: str = text(max_length=10, required=True, strip=False)(value, path)
    return sep


def _time_zone(value: Any, path: str) -> str:
    name: str = text(max_length=100, required=True)(value, path)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            path, f"{name!r} is not an IANA time zone (e.g. 'Europe/Berlin', 'UTC')"
        ) from None
    return name


def _country(value: Any, path: str) -> str | None:
    if value is None:
        return None
    code: str = text(max_length=2, required=True)(value, path).upper()
    if not re.fullmatch(r"[A-Z]{2}", code):
        raise ValidationError(path, f"{value!r} is not an ISO 3166-1 alpha-2 country code")
    return code


@attrs.frozen(kw_only=True)
class EmailColumn:
    """A CSV column holding an email address, and the label the address gets."""

    column: str = checked(_column)
    label: str = checked(_label, default="work")

    def __attrs_post_init__(self) -> None:
        run_checks(self)


@attrs.frozen(kw_only=True)
class PhoneColumn:
    """A CSV column holding a phone number, and the label the number gets."""

    column: str = checked(_column)
    label: str = checked(_label, default="work")

    def __attrs_post_init__(self) -> None:
        run_checks(self)


@attrs.frozen(kw_only=True)
class CustomColumn:
    """A CSV column that becomes the custom field ``key``, read as ``type``."""

    column: str = checked(_column)
    key: str = checked(_custom_key)
    type: CustomFieldType = checked(one_of(CustomFieldType), default=CustomFieldType.TEXT)

    def __attrs_post_init__(self) -> None:
        run_checks(self)


@attrs.frozen(kw_only=True)
class AddressColumns:
    """The CSV columns of a customer's postal address; a row with every part empty has none.

    ``default_country`` fills in an empty (or unmapped) country cell, for files of one country.
    """

    line1: str | None = checked(_optional_column, default=None)
    line2: str | None = checked(_optional_column, default=None)
    city: str | None = checked(_optional_column, default=None)
    postal_code: str | None = checked(_optional_column, default=None)
    region: str | None = checked(_optional_column, default=None)
    country: str | None = checked(_optional_column, default=None)
    default_country: str | None = checked(_country, default=None)
    label: str = checked(_label, default="main")

    def __attrs_post_init__(self) -> None:
        run_checks(self)
        if self.country is None and self.default_country is None:
            raise ValidationError("country", "an address needs a country column or a default_country")

    def parts(self) -> dict[str, str]:
        """Address field -> CSV column, for the parts that are mapped."""
        names = ("line1", "line2", "city", "postal_code", "region", "country")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}


@attrs.frozen(kw_only=True)
class CustomerMapping:
    """Which CSV column feeds which `Customer` field; unmapped fields keep their defaults.

    Every column named here must be in the file's header. Several columns may feed ``emails``
    and ``phones`` (the first filled one becomes the primary). ``id`` maps an external id used
    as the customer's id (a new id when the cell is empty). ``date_format`` (strftime; None for
    ISO 8601) reads ``birthday`` and date custom fields.
    """

    name: str = checked(_column)
    kind: str | None = checked(_optional_column, default=None)
    id: str | None = checked(_optional_column, default=None)
    emails: Sequence[EmailColumn] = checked(tuple_of(instance_of(EmailColumn)), default=())
    phones: Sequence[PhoneColumn] = checked(tuple_of(instance_of(PhoneColumn)), default=())
    address: AddressColumns | None = checked(optional(instance_of(AddressColumns)), default=None)
    tags: str | None = checked(_optional_column, default=None)
    tag_separator: str = checked(_separator, default=",")
    owner: str | None = checked(_optional_column, default=None)
    currency: str | None = checked(_optional_column, default=None)
    birthday: str | None = checked(_optional_column, default=None)
    date_format: str | None = checked(_date_format, default=None)
    lifecycle_stage: str | None = checked(_optional_column, default=None)
    custom: Sequence[CustomColumn] = checked(tuple_of(instance_of(CustomColumn)), default=())
    delimiter: str = checked(_delimiter, default=",")
    encoding: str = checked(_encoding, default="utf-8-sig")
    """Used when the source is a path; ``utf-8-sig`` reads UTF-8 with or without a byte order mark."""

    def __attrs_post_init__(self) -> None:
        run_checks(self)
        errors = [
            FieldError(f"custom[{i}].key", f"{c.key!r} is mapped twice")
            for i, c in enumerate(self.custom)
            if any(o.key == c.key for o in self.custom[:i])
        ]
        if errors:
            raise ValidationError.from_errors(errors)

    def columns(self) -> dict[str, str]:
        """Mapping path (``emails[1].column``) -> CSV column, for every column named."""
        out = {n: getattr(self, n) for n in _CUSTOMER_SIMPLE if getattr(self, n) is not None}
        out.update({f"emails[{i}].column": e.column for i, e in enumerate(self.emails)})
        out.update({f"phones[{i}].column": p.column for i, p in enumerate(self.phones)})
        if self.address is not None:
            out.update({f"address.{n}": c for n, c in self.address.parts().items()})
        out.update({f"custom[{i}].column": c.column for i, c in enumerate(self.custom)})
        return out


_CUSTOMER_SIMPLE = ("name", "kind", "id", "tags", "owner", "currency", "birthday", "lifecycle_stage")


@attrs.frozen(kw_only=True)
class OrderMapping:
    """Which CSV column feeds which `Order` field; each row is one order line.

    Rows with the same order key (the ``order_id`` column if mapped, else ``number``) become one
    order, wherever they are in the file; their order-level cells (customer, time, currency,
    status, channel) must agree. The customer is found by ``customer_id`` or, when that cell is
    empty or unmapped, by ``customer_email`` (a stored customer's primary email). Timestamps
    without an offset are read in ``time_zone``; ``datetime_format`` (strftime) or None for ISO 8601.
    """

    order_id: str | None = checked(_optional_column, default=None)
    number: str | None = checked(_optional_column, default=None)
    customer_id: str | None = checked(_optional_column, default=None)
    customer_email: str | None = checked(_optional_column, default=None)
    ordered_at: str = checked(_column)
    time_zone: str = checked(_time_zone, default="UTC")
    datetime_format: str | None = checked(_date_format, default=None)
    currency: str | None = checked(_optional_column, default=None)
    default_currency: str | None = checked(optional(check_currency), default=None)
    product: str = checked(_column)
    sku: str | None = checked(_optional_column, default=None)
    quantity: str | None = checked(_optional_column, default=None)
    unit_price: str = checked(_column)
    discount: str | None = checked(_optional_column, default=None)
    """An amount off the line (in the order's currency)."""
    status: str | None = checked(_optional_column, default=None)
    channel: str | None = checked(_optional_column, default=None)
    delimiter: str = checked(_delimiter, default=",")
    encoding: str = checked(_encoding, default="utf-8-sig")

    def __attrs_post_init__(self) -> None:
        run_checks(self)
        errors = []
        if self.order_id is None and self.number is None:
            errors.append(
                FieldError("order_id", "map order_id or number: rows are grouped into orders by it")
            )
        if self.customer_id is None and self.customer_email is None:
            errors.append(FieldError("customer_id", "map customer_id or customer_email"))
        if self.currency is None and self.default_currency is None:
            errors.append(FieldError("currency", "map a currency column or give default_currency"))
        if errors:
            raise ValidationError.from_errors(errors)

    def columns(self) -> dict[str, str]:
        """Mapping field -> CSV column, for every column named."""
        names = [a.name for a in attrs.fields(OrderMapping)]
        skip = {"time_zone", "datetime_format", "default_currency", "delimiter", "encoding"}
        return {n: getattr(self, n) for n in names if n not in skip and getattr(self, n) is not None}


# --- report ------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class RowError:
    """One problem in one row: its line number in the file (the header is line 1), the CSV
    column (empty for the row as a whole), the cell's text and the reason."""

    row: int
    field: str
    value: str
    reason: str

    def __str__(self) -> str:
        where = f"line {self.row}" + (f", {self.field}" if self.field else "")
        return f"{where}: {self.reason}"


@attrs.frozen(kw_only=True)
class DuplicateRow:
    """A row whose email or phone (``value``, normalized, in CSV column ``field``) another
    customer has: a stored one (``earlier_row`` None) or the one made from an earlier row."""

    row: int
    field: str
    value: str
    customer_id: str
    earlier_row: int | None = None


@attrs.frozen(kw_only=True)
class ImportReport:
    """What an import did; JSON-ready with `crmcore.serialization.unstructure`.

    ``added`` counts records stored (customers, or orders with ``lines_added`` lines);
    ``rows_skipped`` the rows not stored, for whatever reason.
    """

    what: str
    mode: ImportMode
    rows_read: int
    added: int
    rows_skipped: int
    errors: tuple[RowError, ...] = ()
    duplicates: tuple[DuplicateRow, ...] = ()
    lines_added: int = 0
    elapsed_seconds: float = 0.0

    @property
    def bad_rows(self) -> tuple[int, ...]:
        """Line numbers of the rows with errors, ascending."""
        return tuple(sorted({e.row for e in self.errors}))

    @property
    def ok(self) -> bool:
        """Whether every row was good (duplicates aside)."""
        return not self.errors

    def summary(self) -> str:
        """One line for people: rows read, stored, skipped, errors, duplicates and time taken."""
        mode = self.mode.value.replace("_", " ")
        if self.mode is ImportMode.ALL_OR_NOTHING and self.errors:
            stored = "nothing stored"
        elif self.what == "orders":
            stored = f"{_count(self.added, 'order')} ({_count(self.lines_added, 'line')}) added"
        else:
            stored = f"{_count(self.added, self.what.rstrip('s'))} added"
        parts = [f"{self.what} import ({mode}): {_count(self.rows_read, 'row')} read", stored]
        parts.append(f"{_count(self.rows_skipped, 'row')} skipped")
        if self.errors:
            problems = _count(len(self.errors), "problem")
            parts.append(f"{_count(len(self.bad_rows), 'row')} with errors ({problems})")
        if self.duplicates:
            parts.append(_count(len(self.duplicates), "duplicate"))
        return ", ".join(parts) + f"; {self.elapsed_seconds:.1f} s"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


# --- reading CSV -------------------------------------------------------------------------------


class _Csv:
    """The header and the data rows of a CSV source, with their line numbers."""

    def __init__(self, source: Source, delimiter: str, encoding: str, stack: ExitStack) -> None:
        self.total: int | None = None
        lines: Iterable[str]
        if isinstance(source, str | os.PathLike):
            path = Path(source)
            if not path.is_file():
                hint = " (for CSV text, pass io.StringIO(text))" if isinstance(source, str) else ""
                raise ValidationError("source", f"no file at {str(path)!r}{hint}")
            self.total = self._count(path, delimiter, encoding)
            if "a\n".encode(encoding).endswith(b"a\n"):
                lines = self._decoded(stack.enter_context(path.open("rb")), encoding)
            else:  # UTF-16 and the like: no byte-level lines, let Python decode
                lines = stack.enter_context(path.open(encoding=encoding, newline=""))
        elif isinstance(source, bytes | bytearray):
            raise ValidationError("source", "give text, not bytes (decode it, or pass a path)")
        else:
            lines = self._text(source)
        self.reader = csv.reader(lines, delimiter=delimiter, strict=True)
        header = self._next()
        while header is not None and not header[1]:
            header = self._next()
        if header is None:
            raise ValidationError("source", "the file is empty: it needs a header row naming its columns")
        self.header_line, cells = header
        if cells and cells[0].startswith("\ufeff"):
            cells[0] = cells[0][1:]  # a byte order mark read as text
        self.header = [c.strip() for c in cells]

    @staticmethod
    def _count(path: Path, delimiter: str, encoding: str) -> int | None:
        """Rows in the file, for progress reports (None when it cannot be read as CSV)."""
        try:
            with path.open(encoding=encoding, newline="") as f:
                return max(sum(1 for row in csv.reader(f, delimiter=delimiter) if row) - 1, 0)
        except (UnicodeError, csv.Error):
            return None  # the real pass reports the problem with its line number

    @staticmethod
    def _decoded(lines: Iterable[bytes], encoding: str) -> Iterator[str]:
        """Decode line by line, so a bad byte is reported with its line number."""
        decoder = codecs.getincrementaldecoder(encoding)()
        for number, line in enumerate(lines, start=1):
            try:
                yield decoder.decode(line)
            except UnicodeDecodeError as exc:
                raise ValidationError(
                    "encoding",
                    f"line {number} is not {encoding} text ({exc.reason}); "
                    "set the mapping's encoding (e.g. 'cp1252' or 'latin-1' for old spreadsheet exports)",
                ) from None

    @staticmethod
    def _text(lines: Iterable[Any]) -> Iterator[str]:
        for line in lines:
            if not isinstance(line, str):
                raise ValidationError("source", f"give lines of text, not {type(line).__name__}")
            yield line

    def _next(self) -> tuple[int, list[str]] | None:
        """The next record with its first line number; a malformed one is (line, ['\0error', msg])."""
        start = self.reader.line_num + 1
        try:
            cells = next(self.reader)
        except StopIteration:
            return None
        except csv.Error as exc:
            return start, ["\0error", str(exc)]
        return start, cells

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """Data rows (blank lines left out) with the line each starts on."""
        while (record := self._next()) is not None:
            if record[1]:
                yield record

    def position(self, error: RowError) -> tuple[int, int]:
        """Sort key for errors: by line, then by column as the file orders them (the row first)."""
        return error.row, self.header.index(error.field) if error.field in self.header else -1

    def index(self, columns: dict[str, str]) -> dict[str, int]:
        """CSV column -> cell index for ``columns`` (mapping path -> column).

        Raises:
            ValidationError: naming every mapped column the header lacks or repeats.
        """
        errors = []
        positions: dict[str, int] = {}
        for path, column in columns.items():
            found = [i for i, h in enumerate(self.header) if h == column]
            if not found:
                shown = ", ".join(repr(h) for h in self.header)
                errors.append(FieldError(path, f"column {column!r} is not in the file's header ({shown})"))
            elif len(found) > 1:
                errors.append(FieldError(path, f"column {column!r} appears {len(found)} times in the header"))
            else:
                positions[column] = found[0]
        if errors:
            raise ValidationError.from_errors(errors)
        return positions


def _ragged(line: int, cells: list[str], width: int) -> RowError | None:
    if cells[0] == "\0error" and len(cells) == 2:
        return RowError(row=line, field="", value="", reason=f"malformed CSV: {cells[1]}")
    if len(cells) != width:
        return RowError(row=line, field="", value="", reason=f"has {len(cells)} cells, the header {width}")
    return None


class _Row:
    """One data row: cells by column, and the problems found so far."""

    __slots__ = ("cells", "errors", "index", "line")

    def __init__(self, line: int, cells: list[str], index: dict[str, int]) -> None:
        self.line, self.cells, self.index = line, cells, index
        self.errors: list[RowError] = []

    def raw(self, column: str | None) -> str:
        return "" if column is None else self.cells[self.index[column]]

    def get(self, column: str | None) -> str:
        return self.raw(column).strip()

    def fail(self, column: str | None, reason: str) -> None:
        self.errors.append(RowError(row=self.line, field=column or "", value=self.raw(column), reason=reason))

    def fail_rule(self, column: str | None, error: FieldError) -> None:
        """A data rule the row's object breaks: at the column feeding the field, else at its path."""
        if column is not None:
            self.fail(column, error.reason)
        else:
            self.errors.append(RowError(row=self.line, field=error.path, value="", reason=error.reason))

    def check(self, column: str | None, parse: Callable[[str], T]) -> T | None:
        """``parse`` the trimmed cell (None when empty); a ValidationError becomes a row error."""
        value = self.get(column)
        if not value:
            return None
        try:
            return parse(value)
        except ValidationError as exc:
            for e in exc.errors:
                self.fail(column, e.reason)
            return None


def _enum(cls: type[Any]) -> Callable[[str], Any]:
    def parse(value: str) -> Any:
        try:
            return cls(value.lower())
        except ValueError:
            valid = ", ".join(repr(m.value) for m in cls)
            raise ValidationError("", f"{value!r} is not one of {valid}") from None

    return parse


def _parse_date(fmt: str | None) -> Callable[[str], date]:
    def parse(value: str) -> date:
        try:
            return date.fromisoformat(value) if fmt is None else datetime.strptime(value, fmt).date()
        except ValueError:
            raise ValidationError(
                "", f"{value!r} is not a date in the format {fmt or 'YYYY-MM-DD'}"
            ) from None

    return parse


_INT = re.compile(r"[+-]?\d+\Z")
_TRUE = {"true", "yes", "y", "1", "t"}
_FALSE = {"false", "no", "n", "0", "f"}


def _parse_decimal(value: str) -> Decimal:
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ValidationError("", f"{value!r} is not a number (write it like 1234.56)") from None
    if not number.is_finite():
        raise ValidationError("", f"{value!r} is not a finite number")
    return number


_MAX_DIGITS = 100
"""Digits a decimal custom field may have written out (``1e400`` would be 401)."""


def _plain_decimal(value: str) -> str:
    """A decimal cell as the plain text a decimal custom field holds: ``1e3`` -> ``"1000"``, no ``-0``.

    ``str(Decimal)`` writes exponents (``1E+3``, ``1E-7``), which the schema's decimal type refuses.
    """
    number = _parse_decimal(value)
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)  # finite: checked by _parse_decimal
    if max(number.adjusted() + 1, 1) + max(-exponent, 0) > _MAX_DIGITS:
        raise ValidationError("", f"{value!r} has too many digits written out (at most {_MAX_DIGITS})")
    return format(abs(number) if number.is_zero() else number, "f")


def _positive(value: str) -> Decimal:
    number = _parse_decimal(value)
    if number <= 0:
        raise ValidationError("", f"must be a positive number, got {value!r}")
    return number


_MULTI = ";"
"""Separator of the choices in one multi_choice cell (``"red; blue"``)."""


def _custom_parser(kind: CustomFieldType, date_format: str | None) -> Callable[[str], Any]:
    """Cell text -> the JSON value a custom field of ``kind`` holds (see `crmcore.customers.schema`)."""
    if kind is CustomFieldType.INTEGER:

        def parse_int(value: str) -> int:
            if not _INT.match(value):
                raise ValidationError("", f"{value!r} is not a whole number")
            return int(value)

        return parse_int
    if kind is CustomFieldType.DECIMAL:
        return _plain_decimal
    if kind is CustomFieldType.NUMBER:

        def parse_number(value: str) -> int | float:
            number = _parse_decimal(value)
            return int(number) if number == number.to_integral_value() else float(number)

        return parse_number
    if kind is CustomFieldType.MULTI_CHOICE:
        return lambda value: sorted({part.strip() for part in value.split(_MULTI) if part.strip()})
    if kind is CustomFieldType.BOOLEAN:

        def parse_bool(value: str) -> bool:
            if value.lower() in _TRUE:
                return True
            if value.lower() in _FALSE:
                return False
            raise ValidationError("", f"{value!r} is not yes/no (true/false, y/n, 1/0)")

        return parse_bool
    if kind is CustomFieldType.DATE:
        to_date = _parse_date(date_format)
        return lambda value: to_date(value).isoformat()
    return lambda value: value


def _in_chunks(repo: Repository[T], field: str, values: Iterable[str]) -> list[T]:
    """Objects whose ``field`` is one of ``values``: one query per chunk, never one per value."""
    wanted = sorted(set(values))
    found: list[T] = []
    for start in range(0, len(wanted), _QUERY_CHUNK):
        condition: Condition = Field(field).in_(wanted[start : start + _QUERY_CHUNK])
        found.extend(repo.find(condition))
    return found


def _check_options(mode: Any, batch_size: Any, on_progress: Any) -> ImportMode:
    errors: list[FieldError] = []
    try:
        checked_mode: ImportMode = one_of(ImportMode)(mode, "mode")
    except ValidationError as exc:
        errors.extend(exc.errors)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        errors.append(FieldError("batch_size", f"must be a positive integer, got {batch_size!r}"))
    if on_progress is not None and not callable(on_progress):
        errors.append(FieldError("on_progress", "must be a callable (rows_done, rows_total) or None"))
    if errors:
        raise ValidationError.from_errors(errors)
    return checked_mode


# --- customers ---------------------------------------------------------------------------------


def _email(value: str, label: str) -> EmailAddress:
    return EmailAddress(address=value, label=label)


def _phone(value: str, label: str) -> PhoneNumber:
    return PhoneNumber(number=value, label=label)


_Match = tuple[str, str, str]
"""What duplicates are compared on: ("email", casefolded address, "") or ("phone", E.164, extension)."""


class _Key(NamedTuple):
    """A contact point of a row, to look for duplicates of."""

    kind: str  # "email" or "phone"
    value: str  # as reported: the normalized address, or the E.164 number with its extension
    column: str
    match: _Match


def _email_key(email: EmailAddress, column: str) -> _Key:
    return _Key("email", email.address, column, _email_match(email.address))


def _email_match(address: str) -> _Match:
    """Emails compare ignoring case, as merge and duplicate detection compare them (casefold)."""
    return "email", address.casefold(), ""


def _phone_key(phone: PhoneNumber, column: str) -> _Key:
    shown = f"{phone.number} ext. {phone.extension}" if phone.extension else phone.number
    return _Key("phone", shown, column, _phone_match(phone))


def _phone_match(phone: PhoneNumber) -> _Match:
    """Phones compare in E.164 with their extension: a switchboard's extensions are different people."""
    return "phone", phone.number, phone.extension


@attrs.define
class _Parsed:
    """A row read into a customer (or not), with the contact points to check for duplicates."""

    row: _Row
    customer: Customer | None
    keys: list[_Key]


class _StoredEmails:
    """Stored customers by primary email ignoring case, though the store compares text exactly.

    Addresses keep the case of their local part (``Ann.Smith@example.com``). Those already in
    casefolded form are found with indexed ``Field("email").in_(...)`` lookups of the file's
    casefolded addresses; the others are collected by one pass over the tenant's customers, made
    the first time emails are looked up (the conditions cannot lower-case a field).
    """

    def __init__(self, repo: Repository[Customer]) -> None:
        self.repo = repo
        self.unfolded: dict[str, list[str]] | None = None  # casefolded address -> customer ids

    def find(self, addresses: Iterable[str]) -> dict[str, list[str]]:
        """Casefolded address -> ids of the stored customers whose primary email it is (ignoring case)."""
        if self.unfolded is None:
            self.unfolded = {}
            for customer in self.repo.iter_all():
                email = customer.primary_email
                if email is not None and email != email.casefold():
                    self.unfolded.setdefault(email.casefold(), []).append(customer.id)
        folded = {a.casefold() for a in addresses}
        found: dict[str, list[str]] = {}
        for customer in _in_chunks(self.repo, "email", folded):
            found.setdefault(customer.primary_email or "", []).append(customer.id)
        for address in folded & self.unfolded.keys():
            found.setdefault(address, []).extend(self.unfolded[address])
        return found


def _rules_check(uow: UnitOfWork, repo: Repository[T]) -> Callable[[T], list[FieldError]]:
    """The host's data rules (the unit of work's ``validate`` hook) as a list of an object's problems.

    Checked before `bulk_add`, which would otherwise refuse the whole batch for one bad row.
    """
    validate, name, now = uow.validate, repo.aggregate.name, uow.clock.now()

    def check(obj: T) -> list[FieldError]:
        if validate is None:
            return []
        try:
            validate(name, obj, now)
        except ValidationError as exc:
            return list(exc.errors)
        return []

    return check


class _CustomerReader:
    """Turns rows into customers, collecting every problem of a row."""

    def __init__(self, mapping: CustomerMapping) -> None:
        self.m = mapping
        self.birthday = _parse_date(mapping.date_format)
        self.kind = _enum(CustomerKind)
        self.stage = _enum(LifecycleStage)
        self.custom = [(c, _custom_parser(c.type, mapping.date_format)) for c in mapping.custom]
        self.emails = [(c.column, functools.partial(_email, label=c.label)) for c in mapping.emails]
        self.phones = [(c.column, functools.partial(_phone, label=c.label)) for c in mapping.phones]
        self.address_parts = tuple(mapping.address.parts().items()) if mapping.address else ()
        label = mapping.address.label if mapping.address else ""

        # Addresses are values, and files repeat them (cities, countries): build each once.
        @functools.lru_cache(maxsize=4096)
        def new_address(parts: tuple[tuple[str, str], ...]) -> Address:
            fields: dict[str, Any] = dict(parts)
            return Address(label=label, **fields)

        self.new_address = new_address

    def read(self, row: _Row) -> _Parsed:
        m = self.m
        kw: dict[str, Any] = {}
        keys: list[_Key] = []
        emails: dict[_Match, EmailAddress] = {}
        for column, parse_email in self.emails:
            email = row.check(column, parse_email)
            if email is not None and (key := _email_key(email, column)).match not in emails:
                emails[key.match] = email
                keys.append(key)
        phones: dict[_Match, PhoneNumber] = {}
        for column, parse_phone in self.phones:
            phone = row.check(column, parse_phone)
            if phone is not None and (key := _phone_key(phone, column)).match not in phones:
                phones[key.match] = phone
                keys.append(key)
        kw["emails"], kw["phones"] = list(emails.values()), list(phones.values())
        if m.address is not None:
            kw["addresses"] = self._address(row, m.address)
        if m.kind is not None and (kind := row.check(m.kind, self.kind)) is not None:
            kw["kind"] = kind
        if m.id is not None and (id := row.check(m.id, lambda v: check_id(v, ""))) is not None:
            kw["id"] = id
        if m.tags is not None:
            kw["tags"] = [t.strip() for t in row.get(m.tags).split(m.tag_separator) if t.strip()]
        if m.owner is not None and (owner := row.check(m.owner, lambda v: check_id(v, ""))) is not None:
            kw["owner"] = owner
        if m.currency is not None:
            currency = row.check(m.currency, lambda v: check_currency(v.upper(), ""))
            if currency is not None:
                kw["currency"] = currency
        if m.birthday is not None and (birthday := row.check(m.birthday, self.birthday)) is not None:
            kw["birthday"] = birthday
        if m.lifecycle_stage is not None:
            stage = row.check(m.lifecycle_stage, self.stage)
            if stage is not None:
                kw["lifecycle_stage"] = stage
        custom: dict[str, Any] = {}
        for spec, parse in self.custom:
            value = row.check(spec.column, parse)
            if value is not None:
                custom[spec.key] = value
        kw["custom"] = custom
        customer = None
        try:
            customer = Customer(name=row.raw(m.name), **kw)
        except ValidationError as exc:
            for e in exc.errors:
                where = m.name if e.path == "name" else m.tags if e.path.startswith("tags") else None
                row.fail(where, e.reason if where else str(e))
        if row.errors:
            return _Parsed(row, None, [])
        return _Parsed(row, customer, keys)

    def _address(self, row: _Row, columns: AddressColumns) -> list[Address]:
        parts = tuple((name, row.get(column)) for name, column in self.address_parts)
        if not any(value for _, value in parts):
            return []
        if not dict(parts).get("country"):
            if columns.default_country is None:
                row.fail(columns.country, "is required when the row has an address")
                return []
            parts = (*parts, ("country", columns.default_country))
        try:
            return [self.new_address(parts)]
        except ValidationError as exc:
            for e in exc.errors:
                row.fail(dict(self.address_parts).get(e.path), e.reason)
            return []


class _CustomerImport:
    """The state of one customer import: what the file held so far, and the report's lists."""

    def __init__(self, crm: CRM, tenant: str | None, mapping: CustomerMapping, mode: ImportMode,
                 duplicates: DuplicatePolicy) -> None:  # fmt: skip
        self.crm, self.tenant, self.mapping, self.mode, self.policy = crm, tenant, mapping, mode, duplicates
        self.errors: list[RowError] = []
        self.duplicates: list[DuplicateRow] = []
        self.seen: dict[_Match, tuple[str, int]] = {}  # -> (customer id, row)
        self.ids: dict[str, int] = {}  # external id -> row
        self.added = 0
        self.look_in_store = True
        self.stored_emails: _StoredEmails | None = None

    def unit_of_work(self) -> UnitOfWork:
        return self.crm.unit_of_work() if self.tenant is None else self.crm.unit_of_work(self.tenant)

    def store_batch(self, uow: UnitOfWork, batch: list[_Parsed]) -> None:
        """Check ids and duplicates of ``batch`` with a few queries, then add its good customers."""
        repo = uow.customers
        good = [p for p in batch if p.customer is not None]
        stored_ids: set[str] = set()
        if self.mapping.id is not None and self.look_in_store:
            wanted = [p.customer.id for p in good if p.customer is not None]
            stored_ids = {c.id for c in _in_chunks(repo, "id", wanted)}
        stored = self._stored(repo, good) if self.policy is not DuplicatePolicy.ADD else {}
        check = _rules_check(uow, repo)
        to_add: list[Customer] = []
        for parsed in batch:
            row, customer = parsed.row, parsed.customer
            if customer is not None:
                self._check_id(row, customer, stored_ids)
                for error in [] if row.errors else check(customer):
                    row.fail_rule(self._column_of(error.path, parsed), error)
                if not row.errors and not self._is_duplicate(parsed, stored):
                    to_add.append(customer)
                    for key in parsed.keys:
                        self.seen.setdefault(key.match, (customer.id, row.line))
            self.errors.extend(row.errors)
        if self.mode is ImportMode.SKIP_BAD_ROWS or not self.errors:
            self.added += repo.bulk_add(to_add)

    def _stored(self, repo: Repository[Customer], good: list[_Parsed]) -> dict[_Match, str]:
        """The stored customers with an email or phone of ``good`` (one per match key)."""
        if not self.look_in_store:
            return {}
        wanted = [k for p in good for k in p.keys if k.match not in self.seen]
        stored: dict[_Match, str] = {}
        emails = [k.match[1] for k in wanted if k.kind == "email"]
        if emails:
            if self.stored_emails is None:
                self.stored_emails = _StoredEmails(repo)
            for address, ids in self.stored_emails.find(emails).items():
                stored[_email_match(address)] = min(ids)
        for c in _in_chunks(repo, "phone", [k.match[1] for k in wanted if k.kind == "phone"]):
            phone = primary(c.phones)
            if phone is not None:
                stored.setdefault(_phone_match(phone), c.id)
        return stored

    def _column_of(self, path: str, parsed: _Parsed) -> str | None:
        """The CSV column that feeds a customer field path (``country``, ``custom.vip``), if any."""
        m = self.mapping
        if path in _CUSTOMER_SIMPLE:
            column: str | None = getattr(m, path)
            return column
        if path in ("email", "phone"):  # the primary one: the first filled column
            return next((k.column for k in parsed.keys if k.kind == path), None)
        if path in ("country", "city") and m.address is not None:
            address_column: str | None = getattr(m.address, path)
            return address_column
        return next((c.column for c in m.custom if f"custom.{c.key}" == path), None)

    def _check_id(self, row: _Row, customer: Customer, stored_ids: set[str]) -> None:
        if self.mapping.id is None or not row.get(self.mapping.id):
            return
        if customer.id in stored_ids:
            row.fail(self.mapping.id, f"a customer with id {customer.id!r} is already stored")
        elif (first := self.ids.setdefault(customer.id, row.line)) != row.line:
            row.fail(self.mapping.id, f"repeats the id of line {first}")

    def _is_duplicate(self, parsed: _Parsed, stored: dict[_Match, str]) -> bool:
        """Whether to leave the row out as a duplicate (recording it as the policy says)."""
        if self.policy is DuplicatePolicy.ADD:
            return False
        for kind, value, column, key in parsed.keys:
            if key in self.seen:
                customer_id, earlier = self.seen[key]
            elif key in stored:
                customer_id, earlier = stored[key], None
            else:
                continue
            row = parsed.row
            if self.policy is DuplicatePolicy.ERROR:
                whose = f"line {earlier}'s customer" if earlier else "stored customer"
                row.fail(column, f"{kind} {value} is also the {whose} {customer_id!r}")
                return True
            self.duplicates.append(
                DuplicateRow(
                    row=row.line, field=column, value=value, customer_id=customer_id, earlier_row=earlier
                )
            )
            return self.policy is DuplicatePolicy.SKIP
        return False


def import_customers(
    crm: CRM,
    source: Source,
    mapping: CustomerMapping,
    *,
    tenant: str | None = None,
    mode: ImportMode = ImportMode.ALL_OR_NOTHING,
    duplicates: DuplicatePolicy = DuplicatePolicy.SKIP,
    phone_region: str | None = None,
    on_progress: ProgressCallback | None = None,
    batch_size: int = 1000,
) -> ImportReport:
    """Import customers from CSV; returns a report listing every bad row and every duplicate.

    Rows are read ``batch_size`` at a time; each batch costs a few lookups (ids, emails, phones
    in chunks) and one `bulk_add`. ``ALL_OR_NOTHING`` runs in one unit of work and commits only
    if no row is bad; ``SKIP_BAD_ROWS`` commits each batch's good rows. Duplicates are rows
    whose email (ignoring case) or phone (with its extension) an earlier row of the file has, or
    a stored customer has as its *primary* email or phone (the store indexes only those); emails
    stored with capitals are found by one pass over the tenant's customers per import. A row whose
    customer breaks the CRM's data rules (``rules=``) is a row error, found before `bulk_add`.

    Args:
        crm: where to store the customers.
        source: a path, an open text file, or an iterable of lines.
        mapping: which column feeds which field.
        tenant: the tenant to import into (the CRM's default when None).
        mode: all or nothing, or skip bad rows.
        duplicates: what to do with duplicate rows.
        phone_region: the region of phone numbers written without ``+`` (e.g. ``"DE"``).
        on_progress: called after each batch with (rows done, rows in the file or None).
        batch_size: rows per batch (and per commit when skipping bad rows).

    Raises:
        ValidationError: bad options, an empty file, a header lacking mapped columns, or text
            that is not in the mapping's encoding. Row problems never raise; they are reported.
    """
    started = time.perf_counter()
    import_mode = _check_options(mode, batch_size, on_progress)
    policy = DuplicatePolicy(duplicates)
    if not isinstance(mapping, CustomerMapping):
        raise ValidationError("mapping", f"must be a CustomerMapping, not {type(mapping).__name__}")
    state = _CustomerImport(crm, tenant, mapping, import_mode, policy)
    reader = _CustomerReader(mapping)
    rows_read = 0
    with ExitStack() as stack:
        stack.enter_context(_phone_region(phone_region))
        csv_file = _Csv(source, mapping.delimiter, mapping.encoding, stack)
        index = csv_file.index(mapping.columns())
        width = len(csv_file.header)
        uow = stack.enter_context(state.unit_of_work())
        state.look_in_store = uow.customers.count() > 0  # an empty tenant needs no lookups
        batch: list[_Parsed] = []

        def flush() -> None:
            nonlocal uow
            state.store_batch(uow, batch)
            batch.clear()
            if import_mode is ImportMode.SKIP_BAD_ROWS:
                uow.commit()
            if on_progress is not None:
                on_progress(rows_read, csv_file.total)

        for line, cells in csv_file.rows():
            rows_read += 1
            row = _Row(line, cells, index)
            if (ragged := _ragged(line, cells, width)) is not None:
                row.errors.append(ragged)
                batch.append(_Parsed(row, None, []))
            else:
                batch.append(reader.read(row))
            if len(batch) >= batch_size:
                flush()
        if batch or rows_read == 0:
            flush()
        if import_mode is ImportMode.ALL_OR_NOTHING:
            if state.errors:
                state.added = 0
            else:
                uow.commit()
    errors = tuple(sorted(state.errors, key=csv_file.position))
    return ImportReport(
        what="customers",
        mode=import_mode,
        rows_read=rows_read,
        added=state.added,
        rows_skipped=rows_read - state.added,
        errors=errors,
        duplicates=tuple(state.duplicates),
        elapsed_seconds=round(time.perf_counter() - started, 3),
    )


# --- orders ------------------------------------------------------------------------------------


@attrs.define
class _OrderDraft:
    """The rows of one order key, gathered before the order is built."""

    key: str
    rows: list[_Row] = attrs.field(factory=list)
    head: dict[str, str] = attrs.field(factory=dict)  # order-level cells of the first row, normalized
    lines: list[OrderLine] = attrs.field(factory=list)
    customer_id: str = ""


_ORDER_LEVEL = ("customer_id", "customer_email", "ordered_at", "currency", "status", "channel", "number")


class _OrderReader:
    """Reads order rows into drafts grouped by order key, checking every cell."""

    def __init__(self, mapping: OrderMapping) -> None:
        self.m = mapping
        self.zone = ZoneInfo(mapping.time_zone)
        self.status = _enum(OrderStatus)
        self.channel = _enum(SalesChannel)
        self.drafts: dict[str, _OrderDraft] = {}

    def ordered_at(self, value: str) -> datetime:
        """A cell as an aware UTC datetime; a time without an offset is read in the mapping's zone."""
        fmt = self.m.datetime_format
        try:
            parsed = datetime.fromisoformat(value) if fmt is None else datetime.strptime(value, fmt)
        except ValueError:
            shown = fmt or "ISO 8601"
            raise ValidationError("", f"{value!r} is not a date and time in the format {shown}") from None
        if parsed.tzinfo is None:
            local = parsed.replace(tzinfo=self.zone)
            if local.astimezone(UTC).astimezone(self.zone).replace(tzinfo=None) != parsed:
                zone = self.m.time_zone
                raise ValidationError("", f"{value!r} does not exist in {zone} (the clocks skip it)")
            parsed = local
        return parsed.astimezone(UTC)

    def read(self, row: _Row) -> None:
        m = self.m
        key_column = m.order_id if m.order_id is not None else m.number
        key = row.get(key_column)
        if not key:
            row.fail(key_column, "is required: it groups the rows into orders")
            return
        if m.order_id is not None:
            row.check(m.order_id, lambda v: check_id(v, ""))
        draft = self.drafts.get(key)
        if draft is None:
            draft = self.drafts[key] = _OrderDraft(key=key)
        draft.rows.append(row)
        head = self._head(row)
        if len(draft.rows) == 1:
            draft.head = head
        else:
            self._same_order(row, head, draft)
        line = self._line(row, head["currency"])
        if line is not None:
            draft.lines.append(line)

    def _same_order(self, row: _Row, head: dict[str, str], draft: _OrderDraft) -> None:
        """Fail cells that disagree with the order's first row (only cells that are valid)."""
        bad = {e.field for e in row.errors}
        first = draft.rows[0].line
        for name, value in head.items():
            column = getattr(self.m, name) or ""
            expected = draft.head.get(name, "")
            same = value.casefold() == expected.casefold() if name == "customer_email" else value == expected
            if same or column in bad:
                continue
            what = "mixed currencies in one order" if name == "currency" else "differs within one order"
            row.fail(
                column or None, f"{what}: {expected or '(empty)'} on line {first}, {value or '(empty)'} here"
            )

    def _head(self, row: _Row) -> dict[str, str]:
        """The order-level cells of a row, normalized (each checked once per row)."""
        m = self.m
        head = {name: row.get(getattr(m, name)) for name in _ORDER_LEVEL if getattr(m, name) is not None}
        currency = head.get("currency") or m.default_currency or ""
        if not currency:
            row.fail(m.currency, "is required (or set the mapping's default_currency)")
        elif row.check(m.currency, lambda v: check_currency(v.upper(), "")) is None and head.get("currency"):
            currency = ""  # reported by check
        head["currency"] = currency.upper()
        if not head["ordered_at"]:
            row.fail(m.ordered_at, "is required")
        elif (at := row.check(m.ordered_at, self.ordered_at)) is not None:
            head["ordered_at"] = at.isoformat()
        for name, parse in (("status", self.status), ("channel", self.channel)):
            if name in head:
                row.check(getattr(m, name), parse)
                head[name] = head[name].lower()
        if head.get("customer_id"):
            row.check(m.customer_id, lambda v: check_id(v, ""))
        elif head.get("customer_email"):
            head["customer_email"] = row.check(m.customer_email, normalize_email) or ""
        else:
            row.fail(m.customer_id or m.customer_email, "is required: which customer placed the order")
        return head

    def _line(self, row: _Row, currency: str) -> OrderLine | None:
        m = self.m
        quantity = row.check(m.quantity, _positive) if m.quantity is not None else None
        if not row.get(m.unit_price):
            row.fail(m.unit_price, "is required")
        price = row.check(m.unit_price, _parse_decimal)
        discount = row.check(m.discount, _parse_decimal) if m.discount is not None else None
        if row.errors or price is None or not currency:
            return None
        columns = {"product": m.product, "sku": m.sku, "quantity": m.quantity, "unit_price": m.unit_price}
        columns["discount"] = m.discount
        try:
            return OrderLine(
                product=row.raw(m.product),
                sku=row.raw(m.sku),
                quantity=Decimal(1) if quantity is None else quantity,
                unit_price=Money(price, currency),
                discount=None if discount is None else Money(discount, currency),
            )
        except ValidationError as exc:
            for e in exc.errors:
                row.fail(columns.get(e.path), e.reason)
            return None


def _resolve_customers(uow: UnitOfWork, drafts: list[_OrderDraft], m: OrderMapping) -> None:
    """Set each draft's customer id, or fail its first row; a few queries for the whole file."""
    ids = {d.head["customer_id"] for d in drafts if d.head.get("customer_id")}
    emails = [d.head["customer_email"] for d in drafts if d.head.get("customer_email")]
    known_ids = {c.id for c in _in_chunks(uow.customers, "id", ids)}
    by_email = _StoredEmails(uow.customers).find(emails) if emails else {}
    for d in drafts:
        row = d.rows[0]
        if customer_id := d.head.get("customer_id"):
            if customer_id in known_ids:
                d.customer_id = customer_id
            else:
                row.fail(m.customer_id, f"no customer with id {customer_id!r}")
        elif email := d.head.get("customer_email"):
            found = sorted(by_email.get(email.casefold(), []))
            if len(found) == 1:
                d.customer_id = found[0]
            elif not found:
                row.fail(m.customer_email, f"no customer has {email} as primary email")
            else:
                row.fail(m.customer_email, f"{len(found)} customers have {email}: {', '.join(sorted(found))}")


def _check_stored_orders(uow: UnitOfWork, drafts: list[_OrderDraft], m: OrderMapping) -> None:
    """Fail orders whose id (or, without an id column, number) is already stored."""
    field = "id" if m.order_id is not None else "number"
    stored = {getattr(o, field): o.id for o in _in_chunks(uow.orders, field, [d.key for d in drafts])}
    column = m.order_id if m.order_id is not None else m.number
    for d in drafts:
        if d.key in stored:
            d.rows[0].fail(
                column, f"an order with {field} {d.key!r} is already stored (id {stored[d.key]!r})"
            )


def _build_order(d: _OrderDraft, m: OrderMapping, check: Callable[[Order], list[FieldError]]) -> Order | None:
    """The order of a draft whose rows are all good and that keeps the data rules (``check``);
    else None, failing its good rows too."""
    column = m.order_id if m.order_id is not None else m.number
    bad = [r.line for r in d.rows if r.errors]
    if not bad:
        head = d.head
        try:
            order = Order(
                id=d.key if m.order_id is not None else new_id(),
                number=head.get("number", "") if m.order_id is not None else d.key,
                customer_id=d.customer_id,
                ordered_at=datetime.fromisoformat(head["ordered_at"]),
                currency=head["currency"],
                lines=d.lines,
                status=OrderStatus(head.get("status") or OrderStatus.PAID.value),
                channel=SalesChannel(head.get("channel") or SalesChannel.ONLINE.value),
            )
        except ValidationError as exc:
            for e in exc.errors:
                d.rows[0].fail(None, str(e))
            bad = [d.rows[0].line]
        else:
            errors = check(order)
            if not errors:
                return order
            for e in errors:
                d.rows[0].fail_rule(_order_column(e.path, d, m), e)
            bad = [d.rows[0].line]
    lines = ", ".join(str(b) for b in bad)
    for r in d.rows:
        if not r.errors:
            r.fail(column, f"order {d.key!r} not stored: line {lines} has errors")
    return None


def _order_column(path: str, d: _OrderDraft, m: OrderMapping) -> str | None:
    """The CSV column that feeds an order field path (``status``), if any."""
    if path == "customer_id":
        return m.customer_id if d.head.get("customer_id") else m.customer_email
    if path in ("id", "number", "ordered_at", "currency", "status", "channel"):
        column: str | None = getattr(m, "order_id" if path == "id" else path)
        return column
    return None


def import_orders(
    crm: CRM,
    source: Source,
    mapping: OrderMapping,
    *,
    tenant: str | None = None,
    mode: ImportMode = ImportMode.ALL_OR_NOTHING,
    on_progress: ProgressCallback | None = None,
    batch_size: int = 1000,
) -> ImportReport:
    """Import orders from CSV (one line per row); returns a report listing every bad row.

    Rows with the same order key become one order with several lines. The whole file is read
    and checked first (orders may be spread over the file), then customers are looked up in a
    few queries and the orders stored: in one unit of work (``ALL_OR_NOTHING``, only if no row
    is bad), or ``batch_size`` orders per commit (``SKIP_BAD_ROWS``, leaving out each order
    with a bad row; its other rows are reported too, so no row goes missing silently). An order
    that breaks the CRM's data rules is reported on its first row. Emails match ignoring case.

    Args:
        crm: where to store the orders.
        source: a path, an open text file, or an iterable of lines.
        mapping: which column feeds which field.
        tenant: the tenant to import into (the CRM's default when None).
        mode: all or nothing, or skip bad rows.
        on_progress: called every ``batch_size`` rows read with (rows done, rows in the file or None).
        batch_size: rows per progress call; orders per commit when skipping bad rows.

    Raises:
        ValidationError: bad options, an empty file, a header lacking mapped columns, or text
            that is not in the mapping's encoding. Row problems never raise; they are reported.
    """
    started = time.perf_counter()
    import_mode = _check_options(mode, batch_size, on_progress)
    if not isinstance(mapping, OrderMapping):
        raise ValidationError("mapping", f"must be an OrderMapping, not {type(mapping).__name__}")
    reader = _OrderReader(mapping)
    all_rows: list[_Row] = []
    added = lines_added = 0
    with ExitStack() as stack:
        csv_file = _Csv(source, mapping.delimiter, mapping.encoding, stack)
        index = csv_file.index(mapping.columns())
        width = len(csv_file.header)
        for line, cells in csv_file.rows():
            row = _Row(line, cells, index)
            all_rows.append(row)
            if (ragged := _ragged(line, cells, width)) is not None:
                row.errors.append(ragged)
            else:
                reader.read(row)
            if on_progress is not None and len(all_rows) % batch_size == 0:
                on_progress(len(all_rows), csv_file.total)
        drafts = list(reader.drafts.values())

        def unit_of_work() -> UnitOfWork:
            return crm.unit_of_work() if tenant is None else crm.unit_of_work(tenant)

        with unit_of_work() as uow:
            _resolve_customers(uow, drafts, mapping)
            _check_stored_orders(uow, drafts, mapping)
            check = _rules_check(uow, uow.orders)
        good = [o for o in (_build_order(d, mapping, check) for d in drafts) if o is not None]
        errors = sorted((e for r in all_rows for e in r.errors), key=csv_file.position)
        if import_mode is ImportMode.SKIP_BAD_ROWS or not errors:
            size = len(good) if import_mode is ImportMode.ALL_OR_NOTHING else batch_size
            for start in range(0, len(good), max(size, 1)):
                with unit_of_work() as uow:
                    chunk = good[start : start + size]
                    added += uow.orders.bulk_add(chunk)
                    uow.commit()
                lines_added += sum(len(o.lines) for o in chunk)
        if on_progress is not None:
            on_progress(len(all_rows), csv_file.total)
    return ImportReport(
        what="orders",
        mode=import_mode,
        rows_read=len(all_rows),
        added=added,
        rows_skipped=len(all_rows) - lines_added,
        errors=tuple(errors),
        duplicates=(),
        lines_added=lines_added,
        elapsed_seconds=round(time.perf_counter() - started, 3),
    )
