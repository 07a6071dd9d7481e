"""CSV import of customers and orders: modes, per-row errors, normalization, duplicates, orders."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import attrs
import pytest

import crmcore
from crmcore import CRM, Field, Money, ValidationError
from crmcore.customers import Customer, CustomerKind, EmailAddress, PhoneNumber
from crmcore.customers.imports import (
    AddressColumns,
    CustomColumn,
    CustomerMapping,
    DuplicatePolicy,
    DuplicateRow,
    EmailColumn,
    ImportMode,
    ImportReport,
    OrderMapping,
    PhoneColumn,
    RowError,
    import_customers,
    import_orders,
)
from crmcore.customers.schema import (
    CustomFieldDef,
    CustomFieldType,
    DataRules,
    FieldSchema,
    UnknownKeys,
    ValidationRule,
)
from crmcore.ids import new_id
from crmcore.serialization import structure, unstructure
from crmcore.storage.sql import SqlStore

SKIP = ImportMode.SKIP_BAD_ROWS
ALL = ImportMode.ALL_OR_NOTHING

MAPPING = CustomerMapping(
    name="Name",
    kind="Type",
    emails=[EmailColumn(column="Email"), EmailColumn(column="Private email", label="home")],
    phones=[PhoneColumn(column="Phone")],
    address=AddressColumns(line1="Street", city="City", postal_code="Zip", country="Country"),
    tags="Tags",
    birthday="Born",
    custom=[CustomColumn(column="Shoe size", key="shoe_size", type=CustomFieldType.INTEGER)],
)
HEADER = "Name,Type,Email,Private email,Phone,Street,City,Zip,Country,Tags,Born,Shoe size\n"


@attrs.frozen
class Target:
    """A CRM and the tenant a test imports into."""

    crm: CRM
    tenant: str

    def customers(self) -> list[Customer]:
        with self.crm.unit_of_work(self.tenant) as uow:
            return uow.customers.find(order_by=["name"])

    def add(self, *customers: Customer) -> None:
        with self.crm.unit_of_work(self.tenant) as uow:
            uow.customers.bulk_add(customers)
            uow.commit()

    def with_rules(self, rules: DataRules) -> Target:
        """The same store and tenant, behind a CRM that enforces ``rules``."""
        return Target(CRM(self.crm.store, clock=self.crm.clock, rules=rules), self.tenant)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    """Each store the import must work on; PostgreSQL with a fresh tenant per test."""
    if request.param == "postgres":
        store = SqlStore(request.getfixturevalue("postgres_engine"))
        store.create_schema()
        yield Target(CRM(store), f"t-{new_id()}")
        return
    crm = crmcore.open("memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'crm.db'}")
    yield Target(crm, "default")
    crm.close()


def rows(*lines: str, header: str = HEADER) -> io.StringIO:
    """A CSV file in memory: the header and ``lines``."""
    return io.StringIO(header + "".join(line + "\n" for line in lines))


GOOD = [
    " Ada Lovelace ,person,ada@Example.COM,,+44 20 7946 0958,12 St James's Sq,London,SW1Y 4JH,gb,"
    "vip; x,1815-12-10,38",
    "Analytical Engines Ltd,COMPANY,sales@engines.example.org,,,,,,,,,",
]
BAD = [
    ",robot,not-an-email,,+1 202 555,,Berlin,,Germany,,1815-13-10,big",  # every cell that can be wrong is
    "Grace Hopper,person,grace@example.com,,,,,,,,10/12/1906,",
]


# --- mappings --------------------------------------------------------------------------------------


def test_mappings_round_trip_through_the_converter() -> None:
    """Customer and order mappings survive unstructure/structure unchanged (they are saved as JSON)."""
    orders = OrderMapping(
        number="Order",
        customer_email="Email",
        ordered_at="Date",
        time_zone="Europe/Berlin",
        currency="Currency",
        product="Product",
        unit_price="Price",
        quantity="Qty",
    )
    assert structure(unstructure(MAPPING), CustomerMapping) == MAPPING
    assert structure(unstructure(orders), OrderMapping) == orders
    assert unstructure(MAPPING)["custom"] == [{"column": "Shoe size", "key": "shoe_size", "type": "integer"}]


def test_unknown_and_bad_mapping_fields_are_refused_together() -> None:
    """Structuring a mapping names every unknown field and every bad value at once."""
    data = unstructure(MAPPING) | {"nickname": "Nick"}
    data["custom"] = [{"column": "X", "key": "k", "type": "float"}]
    with pytest.raises(ValidationError) as caught:
        structure(data, CustomerMapping)
    assert {e.path for e in caught.value.errors} == {"nickname", "custom[0].type"}
    data = unstructure(MAPPING) | {"delimiter": ";;", "date_format": "dd.mm.yyyy"}
    with pytest.raises(ValidationError) as caught:
        structure(data, CustomerMapping)
    assert {e.path for e in caught.value.errors} == {"delimiter", "date_format"}
    with pytest.raises(ValidationError, match="letters, digits"):
        structure({"column": "X", "key": "1bad"}, CustomColumn)


def test_mapping_rules_checked_when_built() -> None:
    """Mappings refuse what could never import: no country for addresses, no order key, bad zone."""
    with pytest.raises(ValidationError, match="country"):
        AddressColumns(city="City")
    with pytest.raises(ValidationError, match="mapped twice"):
        CustomerMapping(
            name="N", custom=[CustomColumn(column="A", key="k"), CustomColumn(column="B", key="k")]
        )
    with pytest.raises(ValidationError) as caught:
        OrderMapping(ordered_at="D", product="P", unit_price="U", time_zone="Mars/Olympus")
    assert {e.path for e in caught.value.errors} == {"time_zone"}
    with pytest.raises(ValidationError) as caught:
        OrderMapping(ordered_at="D", product="P", unit_price="U")
    assert {e.path for e in caught.value.errors} == {"order_id", "customer_id", "currency"}


# --- bad input ---------------------------------------------------------------------------------------


def test_missing_header_columns_are_named() -> None:
    """A header lacking mapped columns raises one ValidationError naming each missing column."""
    crm = crmcore.open("memory://")
    with pytest.raises(ValidationError) as caught:
        import_customers(crm, io.StringIO("Name,E-Mail\nAda,ada@example.com\n"), MAPPING)
    missing = {e.path: e.reason for e in caught.value.errors}
    assert (
        "emails[0].column" in missing and "'Email' is not in the file's header" in missing["emails[0].column"]
    )
    assert "address.country" in missing and "custom[0].column" in missing
    assert "name" not in missing


def test_empty_file_and_bad_sources_raise() -> None:
    """An empty file, a string that is no file and a repeated header column are refused clearly."""
    crm = crmcore.open("memory://")
    with pytest.raises(ValidationError, match="empty"):
        import_customers(crm, io.StringIO(""), MAPPING)
    with pytest.raises(ValidationError, match=r"io\.StringIO"):
        import_customers(crm, "Name\nAda\n", CustomerMapping(name="Name"))
    with pytest.raises(ValidationError, match="appears 2 times"):
        import_customers(crm, io.StringIO("Name,Name\nA,B\n"), CustomerMapping(name="Name"))


def test_header_only_imports_nothing() -> None:
    """A file with a header and no rows is a valid, empty import."""
    report = import_customers(crmcore.open("memory://"), io.StringIO("Name\n"), CustomerMapping(name="Name"))
    assert (report.rows_read, report.added, report.errors) == (0, 0, ())


def test_byte_order_mark_and_encodings(tmp_path: Path) -> None:
    """A UTF-8 BOM is dropped from the header; other encodings are read when the mapping names them."""
    crm = crmcore.open("memory://")
    path = tmp_path / "bom.csv"
    path.write_bytes("Name,City\nJosé,Köln\n".encode("utf-8-sig"))
    mapping = CustomerMapping(name="Name")
    assert import_customers(crm, path, mapping).added == 1
    assert import_customers(crm, io.StringIO("\ufeffName\nZoë\n"), mapping).added == 1
    latin = tmp_path / "latin.csv"
    latin.write_bytes("Name\nMüller\n".encode("cp1252"))
    assert import_customers(crm, latin, attrs.evolve(mapping, encoding="cp1252")).added == 1
    with crm.unit_of_work() as uow:
        assert sorted(c.name for c in uow.customers.find()) == ["José", "Müller", "Zoë"]


def test_bytes_in_the_wrong_encoding_name_their_line(tmp_path: Path) -> None:
    """A byte sequence that is not UTF-8 raises a ValidationError naming its line and the fix."""
    path = tmp_path / "cp1252.csv"
    path.write_bytes(b"Name\nAda\nGrace\nM\xfcller\n")
    with pytest.raises(ValidationError, match=r"line 4 is not utf-8-sig text.*encoding") as caught:
        import_customers(crmcore.open("memory://"), path, CustomerMapping(name="Name"))
    assert caught.value.field == "encoding"


def test_ragged_and_malformed_rows_are_row_errors() -> None:
    """Rows with too few or too many cells, or broken quoting, are reported by line, not raised."""
    source = io.StringIO('Name,City\nAda,London\nGrace\nEmmy,Erlangen,DE\n"Alan"x,London\nKurt,Brno\n')
    report = import_customers(crmcore.open("memory://"), source, CustomerMapping(name="Name"), mode=SKIP)
    assert report.added == 2 and report.bad_rows == (3, 4, 5)
    assert report.errors[0] == RowError(row=3, field="", value="", reason="has 1 cells, the header 2")
    assert "malformed CSV" in report.errors[2].reason


def test_bad_options_are_refused_together() -> None:
    """Mode, batch size and callback are checked before anything is read."""
    with pytest.raises(ValidationError) as caught:
        import_customers(
            crmcore.open("memory://"),
            rows(),
            MAPPING,
            mode="fast",  # type: ignore[arg-type]
            batch_size=0,
            on_progress=5,  # type: ignore[arg-type]
        )
    assert {e.path for e in caught.value.errors} == {"mode", "batch_size", "on_progress"}


# --- customers ---------------------------------------------------------------------------------------


def test_normalization(target: Target) -> None:
    """Names trimmed, emails normalized, phones in E.164, tags split, typed custom fields, case-free enums."""
    mapping = attrs.evolve(MAPPING, tag_separator=";", date_format="%Y-%m-%d")
    source = rows(*GOOD, "Kurt Gödel,Person,kurt@example.AT,,0316 123456,,Wien,,at,,,")
    report = import_customers(target.crm, source, mapping, tenant=target.tenant, phone_region="AT")
    assert report.ok and report.added == 3
    ada, engines, kurt = target.customers()
    assert ada.name == "Ada Lovelace" and ada.kind is CustomerKind.PERSON
    assert ada.emails == (EmailAddress(address="ada@example.com"),)
    assert ada.phones == (PhoneNumber(number="+442079460958"),)
    assert (ada.country, ada.city, ada.primary_address and ada.primary_address.postal_code) == (
        "GB",
        "London",
        "SW1Y 4JH",
    )
    assert ada.tags == ("vip", "x") and ada.birthday == date(1815, 12, 10)
    assert ada.custom == {"shoe_size": 38}
    assert engines.kind is CustomerKind.COMPANY and engines.addresses == () and engines.custom == {}
    assert kurt.primary_phone == "+43316123456" and kurt.primary_email == "kurt@example.at"


def test_every_problem_of_a_row_is_reported(target: Target) -> None:
    """A bad row lists each bad cell with its column, text and reason; header is line 1."""
    report = import_customers(target.crm, rows(GOOD[0], BAD[0]), MAPPING, tenant=target.tenant, mode=SKIP)
    assert report.bad_rows == (3,)
    problems = {e.field: e for e in report.errors}
    assert set(problems) == {"Name", "Type", "Email", "Phone", "Country", "Born", "Shoe size"}
    assert problems["Email"].value == "not-an-email" and "not an email address" in problems["Email"].reason
    assert "impossible length" in problems["Phone"].reason
    assert "ISO 3166-1" in problems["Country"].reason and problems["Country"].value == "Germany"
    assert "'1815-13-10' is not a date" in problems["Born"].reason
    assert "'robot' is not one of 'person', 'company'" in problems["Type"].reason
    assert problems["Name"].reason == "is required"
    assert [e.field for e in report.errors] == [
        "Name",
        "Type",
        "Email",
        "Phone",
        "Country",
        "Born",
        "Shoe size",
    ]


def test_all_or_nothing_stores_nothing_when_a_row_is_bad(target: Target) -> None:
    """One bad row and nothing is stored; every bad row is still reported."""
    report = import_customers(target.crm, rows(*GOOD, *BAD), MAPPING, tenant=target.tenant, batch_size=1)
    assert report.added == 0 and report.rows_read == 4 and report.rows_skipped == 4
    assert report.bad_rows == (4, 5)
    assert target.customers() == []
    assert report.summary().startswith("customers import (all or nothing): 4 rows read, nothing stored")


def test_all_or_nothing_stores_everything_when_all_rows_are_good(target: Target) -> None:
    """With no bad row, every row is stored in one commit."""
    report = import_customers(target.crm, rows(*GOOD), MAPPING, tenant=target.tenant, batch_size=1)
    assert report.ok and report.added == 2
    assert [c.name for c in target.customers()] == ["Ada Lovelace", "Analytical Engines Ltd"]


def test_skip_bad_rows_stores_the_good_ones(target: Target) -> None:
    """Good rows are stored, bad ones reported with line numbers; batches commit as they go."""
    report = import_customers(
        target.crm, rows(BAD[0], *GOOD, BAD[1]), MAPPING, tenant=target.tenant, mode=SKIP, batch_size=2
    )
    assert report.added == 2 and report.rows_skipped == 2 and report.bad_rows == (2, 5)
    assert len(target.customers()) == 2
    assert "2 customers added, 2 rows skipped, 2 rows with errors (8 problems)" in report.summary()


def test_duplicates_of_stored_customers_and_earlier_rows(target: Target) -> None:
    """Same email or E.164 phone as a stored customer or an earlier row: listed with the match."""
    stored = Customer(name="Ada (CRM)", emails=[EmailAddress(address="ada@example.com")])
    target.add(stored)
    source = rows(
        GOOD[0],  # ada@example.com: the stored customer
        "Grace,person,grace@example.com,,+1 202 555 0100,,,,,,,",
        "Grace H.,person,g.hopper@example.com,,(202) 555-0100,,,,,,,",  # Grace's phone, written otherwise
        "Grace Again,person,x@example.com,GRACE@Example.com,,,,,,,,",  # emails match ignoring case
    )
    report = import_customers(target.crm, source, MAPPING, tenant=target.tenant, phone_region="US", mode=SKIP)
    grace = next(c for c in target.customers() if c.name == "Grace")
    assert report.duplicates == (
        DuplicateRow(row=2, field="Email", value="ada@example.com", customer_id=stored.id),
        DuplicateRow(row=4, field="Phone", value="+12025550100", customer_id=grace.id, earlier_row=3),
        DuplicateRow(
            row=5, field="Private email", value="GRACE@example.com", customer_id=grace.id, earlier_row=3
        ),
    )
    assert report.added == 1 and report.ok
    assert {c.name for c in target.customers()} == {"Ada (CRM)", "Grace"}


@pytest.mark.parametrize(
    ("policy", "added", "listed", "errors"),
    [
        (DuplicatePolicy.SKIP, 1, 2, 0),
        (DuplicatePolicy.REPORT, 3, 2, 0),
        (DuplicatePolicy.ADD, 3, 0, 0),
        (DuplicatePolicy.ERROR, 1, 0, 2),
    ],
)
def test_duplicate_policies(policy: DuplicatePolicy, added: int, listed: int, errors: int) -> None:
    """skip leaves duplicates out, report stores and lists them, add does not look, error rejects them."""
    crm = crmcore.open("memory://")
    with crm.unit_of_work() as uow:
        uow.customers.add(Customer(name="Old", emails=[EmailAddress(address="old@example.com")]))
        uow.commit()
    source = rows("A,,old@example.com,,,,,,,,,", "B,,new@example.com,,,,,,,,,", "C,,,new@example.com,,,,,,,,")
    report = import_customers(crm, source, MAPPING, duplicates=policy, mode=SKIP)
    assert (report.added, len(report.duplicates), len(report.errors)) == (added, listed, errors)
    if policy is DuplicatePolicy.ERROR:
        assert report.errors[1].field == "Private email" and "line 3's customer" in report.errors[1].reason


CUSTOMER_RULES = DataRules(
    schemas=(
        FieldSchema(
            entity="customer",
            fields=(CustomFieldDef(key="shoe_size", type=CustomFieldType.INTEGER, required=True),),
        ),
    ),
    rules=(
        ValidationRule(
            name="country_needed",
            condition=Field("country").is_not_null(),
            message="customers need a country",
            field="country",
        ),
        ValidationRule(
            name="vip_needs_birthday",
            condition=~Field("tags").contains("vip") | Field("birthday").is_not_null(),
            message="VIPs need a birthday",
        ),
    ),
)


@pytest.mark.parametrize("mode", [SKIP, ALL])
def test_data_rules_are_row_errors(target: Target, mode: ImportMode) -> None:
    """Rows breaking the CRM's rules are reported at their line and column; the import never raises."""
    target = target.with_rules(CUSTOMER_RULES)
    source = rows(
        GOOD[0],
        GOOD[1],  # no country, no shoe size
        "Grace Hopper,person,grace@example.com,,,,Arlington,,US,vip,,40",  # a VIP without birthday
        "Kurt Gödel,person,kurt@example.at,,,,Wien,,AT,,,41",
    )
    report = import_customers(target.crm, source, MAPPING, tenant=target.tenant, mode=mode, batch_size=2)
    assert [(e.row, e.field, e.value, e.reason) for e in report.errors] == [
        (3, "Country", "", "customers need a country"),
        (3, "Shoe size", "", "is required"),
        (4, "vip_needs_birthday", "", "VIPs need a birthday"),
    ]
    stored = [c.name for c in target.customers()]
    if mode is SKIP:
        assert report.added == 2 and report.rows_skipped == 2 and stored == ["Ada Lovelace", "Kurt Gödel"]
    else:
        assert report.added == 0 and report.rows_skipped == 4 and stored == []


def test_decimal_custom_fields_are_written_in_plain_notation() -> None:
    """Decimal cells in exponent notation or negative zero are stored as text the decimal type accepts."""
    rules = DataRules(
        schemas=(
            FieldSchema(
                entity="customer",
                fields=(CustomFieldDef(key="d", type=CustomFieldType.DECIMAL),),
                unknown_keys=UnknownKeys.REFUSE,
            ),
        )
    )
    crm = crmcore.open("memory://", rules=rules)
    mapping = CustomerMapping(
        name="N", custom=[CustomColumn(column="D", key="d", type=CustomFieldType.DECIMAL)]
    )
    source = rows(
        "A,1e3", "B,0.0000001", "C,-0", "D,-0.00", "E,1.50", "F,-2.5E-3", "G,1e400", "H,+7", header="N,D\n"
    )
    report = import_customers(crm, source, mapping, mode=SKIP)
    with crm.unit_of_work() as uow:
        stored = {c.name: c.custom["d"] for c in uow.customers.find()}
    assert stored == {
        "A": "1000",
        "B": "0.0000001",
        "C": "0",
        "D": "0.00",
        "E": "1.50",
        "F": "-0.0025",
        "H": "7",
    }
    assert [(e.row, e.field) for e in report.errors] == [(8, "D")]
    assert "too many digits" in report.errors[0].reason


def test_emails_match_stored_customers_ignoring_case(target: Target) -> None:
    """Stored mixed-case emails match the file's in any case (casefold): duplicates and order customers."""
    ann = Customer(name="Ann", emails=[EmailAddress(address="Ann.Smith@example.com")])
    jurgen = Customer(name="Jürgen", emails=[EmailAddress(address="Jürgen@example.de")])
    bob1 = Customer(name="Bob", emails=[EmailAddress(address="Bob@example.com")])
    bob2 = Customer(name="bob", emails=[EmailAddress(address="bob@example.com")])
    target.add(ann, jurgen, bob1, bob2)
    assert ann.primary_email == "Ann.Smith@example.com"  # the local part keeps its case
    mapping = CustomerMapping(name="Name", emails=[EmailColumn(column="Email")])
    source = rows(
        "A,ann.smith@example.com",
        "B,ANN.SMITH@Example.com",
        "C,JÜRGEN@example.de",
        "D,new@example.com",
        header="Name,Email\n",
    )
    report = import_customers(target.crm, source, mapping, tenant=target.tenant)
    assert [(d.row, d.customer_id, d.earlier_row) for d in report.duplicates] == [
        (2, ann.id, None),
        (3, ann.id, None),
        (4, jurgen.id, None),
    ]
    assert report.ok and report.added == 1
    source = rows(
        "E-1,ANN.SMITH@example.com,2026-03-01,EUR,Book,,1,10,,,",
        "E-2,jürgen@EXAMPLE.de,2026-03-01,EUR,Book,,1,10,,,",
        "E-3,BOB@example.com,2026-03-01,EUR,Book,,1,10,,,",
        header=ORDER_HEADER,
    )
    orders = import_orders(target.crm, source, ORDERS, tenant=target.tenant, mode=SKIP)
    assert [(o.number, o.customer_id) for o in orders_of(target)] == [("E-1", ann.id), ("E-2", jurgen.id)]
    ((row, reason),) = [(e.row, e.reason) for e in orders.errors]
    assert row == 4 and reason.startswith("2 customers have BOB@example.com")


def test_phone_extensions_tell_duplicates_apart(target: Target) -> None:
    """A switchboard's extensions are different customers; the same number and extension is a duplicate."""
    desk = Customer(name="Desk 12", phones=[PhoneNumber(number="+49301234567", extension="12")])
    target.add(desk)
    mapping = CustomerMapping(name="Name", phones=[PhoneColumn(column="Phone")])
    source = rows(
        "A,+49 30 1234567 ext. 13",
        "B,+49 30 1234567 ext. 12",
        "C,+49301234567",
        "D,+49 30 1234567 ext. 13",
        header="Name,Phone\n",
    )
    report = import_customers(target.crm, source, mapping, tenant=target.tenant)
    a_id = next(c.id for c in target.customers() if c.name == "A")
    assert [(d.row, d.value, d.customer_id, d.earlier_row) for d in report.duplicates] == [
        (3, "+49301234567 ext. 12", desk.id, None),
        (5, "+49301234567 ext. 13", a_id, 2),
    ]
    stored = {c.name: (c.phones[0].number, c.phones[0].extension) for c in target.customers()}
    assert stored == {
        "A": ("+49301234567", "13"),
        "C": ("+49301234567", ""),
        "Desk 12": ("+49301234567", "12"),
    }


def test_external_ids_become_customer_ids(target: Target) -> None:
    """An id column sets customer ids; ids already stored or repeated in the file are row errors."""
    target.add(Customer(name="Taken", id="C-1"))
    mapping = CustomerMapping(name="Name", id="Customer no")
    source = rows("A,C-1", "B,C-2", "C,C-2", "D,", "E,has space", header="Name,Customer no\n")
    report = import_customers(target.crm, source, mapping, tenant=target.tenant, mode=SKIP)
    assert [(e.row, e.field) for e in report.errors] == [
        (2, "Customer no"),
        (4, "Customer no"),
        (6, "Customer no"),
    ]
    assert (
        "already stored" in report.errors[0].reason and "repeats the id of line 3" in report.errors[1].reason
    )
    names = {c.name: c.id for c in target.customers()}
    assert names["B"] == "C-2" and set(names) == {"Taken", "B", "D"}


def test_custom_field_types() -> None:
    """Custom columns are read as each schema type (decimal as exact string); bad cells reported."""
    mapping = CustomerMapping(
        name="N",
        date_format="%d.%m.%Y",
        custom=[
            CustomColumn(column="T", key="t"),
            CustomColumn(column="I", key="i", type=CustomFieldType.INTEGER),
            CustomColumn(column="D", key="d", type=CustomFieldType.DECIMAL),
            CustomColumn(column="B", key="b", type=CustomFieldType.BOOLEAN),
            CustomColumn(column="Day", key="day", type=CustomFieldType.DATE),
            CustomColumn(column="X", key="x", type=CustomFieldType.NUMBER),
            CustomColumn(column="M", key="m", type=CustomFieldType.MULTI_CHOICE),
        ],
    )
    crm = crmcore.open("memory://")
    header = "N,T,I,D,B,Day,X,M\n"
    report = import_customers(
        crm,
        rows(
            "A, x ,-3,19.90,Yes,01.02.2024,2.5,red; blue;red",
            "B,,1.5,abc,maybe,2024-02-01,many,x",
            "C,,,,,,7,",
            header=header,
        ),
        mapping,
        mode=SKIP,
    )
    assert [e.field for e in report.errors] == ["I", "D", "B", "Day", "X"]
    with crm.unit_of_work() as uow:
        a, c = uow.customers.find(order_by=["name"])
    assert a.custom == {
        "t": "x",
        "i": -3,
        "d": "19.90",
        "b": True,
        "day": "2024-02-01",
        "x": 2.5,
        "m": ["blue", "red"],
    }
    assert c.custom["x"] == 7 and type(c.custom["x"]) is int


def test_progress_is_reported_every_batch(tmp_path: Path) -> None:
    """on_progress gets (rows done, total) after each batch; the total is known for paths only."""
    calls: list[tuple[int, int | None]] = []
    mapping = CustomerMapping(name="Name")
    source = rows("A", "B", "C", "D", "E", header="Name\n")
    import_customers(
        crmcore.open("memory://"), source, mapping, batch_size=2, on_progress=lambda *a: calls.append(a)
    )
    assert calls == [(2, None), (4, None), (5, None)]
    path = tmp_path / "c.csv"
    path.write_text("Name\nA\nB\nC\n", encoding="utf-8")
    calls.clear()
    import_customers(
        crmcore.open("memory://"), path, mapping, batch_size=2, on_progress=lambda *a: calls.append(a)
    )
    assert calls == [(2, 3), (3, 3)]


def test_report_is_json_ready_and_round_trips() -> None:
    """The report unstructures to plain data and back, errors and duplicates included."""
    crm = crmcore.open("memory://")
    report = import_customers(crm, rows(GOOD[0], GOOD[0], BAD[1]), MAPPING, mode=SKIP)
    data = unstructure(report)
    assert data["mode"] == "skip_bad_rows" and data["errors"][0]["row"] == 4
    assert data["duplicates"][0]["earlier_row"] == 2
    assert structure(data, ImportReport) == report
    assert report.summary().endswith(" s") and "1 duplicate" in report.summary()


def test_lines_of_text_and_files_are_sources(tmp_path: Path) -> None:
    """An iterable of lines, an open text file and a path all work."""
    crm = crmcore.open("memory://")
    mapping = CustomerMapping(name="Name")
    assert import_customers(crm, ["Name", "Ada"], mapping).added == 1
    path = tmp_path / "c.csv"
    path.write_text("Name\nGrace\n", encoding="utf-8")
    with path.open(encoding="utf-8", newline="") as f:
        assert import_customers(crm, f, mapping).added == 1
    assert import_customers(crm, str(path), mapping, mode=SKIP).added == 1


# --- orders --------------------------------------------------------------------------------------------

ORDERS = OrderMapping(
    number="Order",
    customer_email="Email",
    ordered_at="Date",
    time_zone="Europe/Berlin",
    currency="Currency",
    product="Product",
    sku="SKU",
    quantity="Qty",
    unit_price="Price",
    discount="Discount",
    status="Status",
    channel="Channel",
)
ORDER_HEADER = "Order,Email,Date,Currency,Product,SKU,Qty,Price,Discount,Status,Channel\n"


def shop(target: Target) -> dict[str, str]:
    """Two stored customers; their ids by email."""
    ada = Customer(name="Ada", emails=[EmailAddress(address="ada@example.com")])
    grace = Customer(name="Grace", emails=[EmailAddress(address="grace@example.com")])
    target.add(ada, grace)
    return {"ada": ada.id, "grace": grace.id}


def orders_of(target: Target) -> list[crmcore.customers.Order]:
    with target.crm.unit_of_work(target.tenant) as uow:
        return uow.orders.find(order_by=["number"])


def test_rows_of_one_order_become_its_lines(target: Target) -> None:
    """Rows with the same order number, anywhere in the file, become one order with several lines."""
    ids = shop(target)
    source = rows(
        "A-1,Ada@EXAMPLE.com,2026-03-01 10:00,EUR,Book,B1,2,10.00,1.00,paid,online",
        "A-2,grace@example.com,2026-03-02T09:00:00+00:00,USD,Pen,,,2.50,,Fulfilled,in_store",
        "A-1,ada@example.com,2026-03-01 10:00,eur,Lamp,L1,1,30,,paid,online",
        header=ORDER_HEADER,
    )
    report = import_orders(target.crm, source, ORDERS, tenant=target.tenant)
    assert report.ok and (report.added, report.lines_added, report.rows_skipped) == (2, 3, 0)
    a1, a2 = orders_of(target)
    assert a1.customer_id == ids["ada"] and a1.currency == "EUR" and a1.number == "A-1"
    assert [(line.product, line.quantity, line.unit_price) for line in a1.lines] == [
        ("Book", Decimal(2), Money("10.00", "EUR")),
        ("Lamp", Decimal(1), Money("30", "EUR")),
    ]
    assert a1.lines[0].discount == Money("1.00", "EUR") and a1.total == Money("49.00", "EUR")
    assert a1.ordered_at == datetime(2026, 3, 1, 9, 0, tzinfo=UTC)  # 10:00 in Berlin (CET)
    assert a2.customer_id == ids["grace"] and a2.ordered_at == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    assert a2.status.value == "fulfilled" and a2.channel.value == "in_store"
    assert "2 orders (3 lines) added" in report.summary()


def test_order_times_in_the_configured_zone() -> None:
    """Naive times are read in the mapping's zone (summer time too); times the clocks skip are errors."""
    crm = crmcore.open("memory://")
    target = Target(crm, "default")
    shop(target)
    mapping = attrs.evolve(ORDERS, time_zone="America/New_York", datetime_format="%d/%m/%Y %H:%M")
    source = rows(
        "S-1,ada@example.com,01/07/2026 12:00,USD,Tea,,,5,,,",
        "S-2,ada@example.com,08/03/2026 02:30,USD,Tea,,,5,,,",  # the DST gap in New York
        "S-3,ada@example.com,2026-07-01 12:00,USD,Tea,,,5,,,",  # not the configured format
        header=ORDER_HEADER,
    )
    report = import_orders(crm, source, mapping, mode=SKIP)
    (s1,) = orders_of(target)
    assert s1.ordered_at == datetime(2026, 7, 1, 16, 0, tzinfo=UTC) and s1.ordered_at.tzinfo is UTC
    assert [(e.row, e.field) for e in report.errors] == [(3, "Date"), (4, "Date")]
    assert "does not exist in America/New_York" in report.errors[0].reason


def test_order_row_errors(target: Target) -> None:
    """Unknown customers, mixed currencies, bad numbers: row errors; an order with a bad row is left out."""
    shop(target)
    source = rows(
        "B-1,nobody@example.com,2026-03-01,EUR,Book,,1,10,,,",
        "B-2,ada@example.com,2026-03-01,EUR,Book,,1,10,,,",
        "B-2,ada@example.com,2026-03-01,USD,Pen,,1,2,,,",
        "B-3,ada@example.com,2026-03-01,EUR,,,0,x,,lost,",
        "B-4,grace@example.com,2026-03-01,EUR,Mug,,2,5,20,,",
        "B-5,grace@example.com,2026-03-01,EUR,Mug,,2,5,,,",
        header=ORDER_HEADER,
    )
    report = import_orders(target.crm, source, ORDERS, tenant=target.tenant, mode=SKIP)
    problems = {(e.row, e.field): e.reason for e in report.errors}
    assert "no customer has nobody@example.com" in problems[2, "Email"]
    assert "mixed currencies in one order: EUR on line 3, USD here" in problems[4, "Currency"]
    assert "order 'B-2' not stored: line 4 has errors" in problems[3, "Order"]
    assert {(5, "Qty"), (5, "Price"), (5, "Status")} <= set(problems)
    assert "between 0 and the line's gross 10 EUR" in problems[6, "Discount"]
    assert [o.number for o in orders_of(target)] == ["B-5"]
    assert report.added == 1 and report.rows_skipped == 5 and report.bad_rows == (2, 3, 4, 5, 6)


def test_orders_all_or_nothing_and_repeated_imports(target: Target) -> None:
    """All or nothing stores no order if a row is bad; importing a stored order number again is an error."""
    ids = shop(target)
    good = "C-1,ada@example.com,2026-03-01,EUR,Book,,1,10,,,"
    mapping = attrs.evolve(ORDERS, customer_email=None, customer_id="Customer")
    header = ORDER_HEADER.replace("Email", "Customer")
    bad = rows(
        good.replace("ada@example.com", ids["ada"]), "C-2,nope,2026-03-01,EUR,Pen,,1,2,,,", header=header
    )
    report = import_orders(target.crm, bad, mapping, tenant=target.tenant)
    assert report.added == 0 and report.bad_rows == (3,) and orders_of(target) == []
    assert "no customer with id 'nope'" in report.errors[0].reason
    once = import_orders(target.crm, rows(good, header=ORDER_HEADER), ORDERS, tenant=target.tenant)
    again = import_orders(target.crm, rows(good, header=ORDER_HEADER), ORDERS, tenant=target.tenant)
    assert once.added == 1 and again.added == 0
    assert "an order with number 'C-1' is already stored" in again.errors[0].reason


ORDER_RULES = DataRules(
    rules=(
        ValidationRule(
            entity="order",
            name="not_cancelled",
            condition=Field("status") != "cancelled",
            message="cancelled orders are not imported",
            field="status",
        ),
        ValidationRule(
            entity="order",
            name="online_only",
            condition=Field("channel") == "online",
            message="shop sales come from the till",
        ),
    )
)


@pytest.mark.parametrize("mode", [SKIP, ALL])
def test_order_data_rules_are_row_errors(target: Target, mode: ImportMode) -> None:
    """Orders breaking the CRM's rules fail their first row (column, else the rule's path); never raise."""
    shop(target)
    target = target.with_rules(ORDER_RULES)
    source = rows(
        "D-1,ada@example.com,2026-03-01,EUR,Book,,1,10,,paid,online",
        "D-2,grace@example.com,2026-03-01,EUR,Book,,1,10,,cancelled,online",
        "D-2,grace@example.com,2026-03-01,EUR,Pen,,1,2,,cancelled,online",
        "D-3,ada@example.com,2026-03-01,EUR,Mug,,1,5,,paid,in_store",
        "D-4,grace@example.com,2026-03-01,EUR,Mug,,1,5,,paid,online",
        header=ORDER_HEADER,
    )
    report = import_orders(target.crm, source, ORDERS, tenant=target.tenant, mode=mode, batch_size=1)
    assert [(e.row, e.field, e.value, e.reason) for e in report.errors] == [
        (3, "Status", "cancelled", "cancelled orders are not imported"),
        (4, "Order", "D-2", "order 'D-2' not stored: line 3 has errors"),
        (5, "online_only", "", "shop sales come from the till"),
    ]
    stored = [o.number for o in orders_of(target)]
    if mode is SKIP:
        assert report.added == 2 and report.rows_skipped == 3 and stored == ["D-1", "D-4"]
    else:
        assert report.added == 0 and report.rows_skipped == 5 and stored == []


def test_order_ids_from_the_file() -> None:
    """With an order id column, orders keep the file's ids and group by them."""
    crm = crmcore.open("memory://")
    target = Target(crm, "default")
    ids = shop(target)
    mapping = OrderMapping(
        order_id="Id",
        customer_id="Customer",
        ordered_at="At",
        default_currency="JPY",
        product="P",
        unit_price="U",
    )
    header = "Id,Customer,At,P,U\n"
    report = import_orders(
        crm,
        rows(
            f"o-1,{ids['ada']},2026-03-01T10:00Z,Tea,500",
            f"o-1,{ids['ada']},2026-03-01T10:00Z,Cup,1500",
            header=header,
        ),
        mapping,
    )
    assert report.ok
    with crm.unit_of_work() as uow:
        order = uow.orders.get("o-1")
    assert order.total == Money("2000", "JPY") and order.number == "" and len(order.lines) == 2
    assert order.ordered_at == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


# --- a large file --------------------------------------------------------------------------------------

BAD_KINDS = ("email", "phone", "name", "birthday", "country")


def write_large_csv(path: Path, n: int) -> dict[int, tuple[str, str]]:
    """A customer CSV of ``n`` rows, 1% bad in varied ways; returns {line: (column, reason part)}."""
    expected: dict[int, tuple[str, str]] = {}
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["Name", "Email", "Phone", "Born", "City", "Country", "Tags"])
        for i in range(n):
            row = [
                f"Customer {i}",
                f"user{i}@example.com",
                f"+49 30 {1000000 + i}",
                f"19{50 + i % 50}-{1 + i % 12:02d}-{1 + i % 28:02d}",
                "Berlin",
                "DE",
                "retail,newsletter",
            ]
            if i % 100 == 37:
                kind = BAD_KINDS[(i // 100) % len(BAD_KINDS)]
                if kind == "email":
                    row[1], expected[i + 2] = f"user{i}@@example", ("Email", "is not an email address")
                elif kind == "phone":
                    row[2], expected[i + 2] = "+1 202 555", ("Phone", "impossible length")
                elif kind == "name":
                    row[0], expected[i + 2] = "  ", ("Name", "is required")
                elif kind == "birthday":
                    row[3], expected[i + 2] = "1990-13-01", ("Born", "is not a date")
                else:
                    row[5], expected[i + 2] = "Germany", ("Country", "ISO 3166-1")
            out.writerow(row)
    return expected


def test_large_import_skips_bad_rows_and_stores_the_rest(tmp_path: Path) -> None:
    """100,000 rows with 1% bad into a SQLite file: every bad row reported, every good row stored."""
    n = 100_000
    path = tmp_path / "customers.csv"
    expected = write_large_csv(path, n)
    crm = crmcore.open(f"sqlite:///{tmp_path / 'crm.db'}")
    with crm.unit_of_work() as uow:  # a few stored customers, so duplicate lookups run per batch
        uow.customers.bulk_add(
            [
                Customer(name=f"Known {i}", emails=[EmailAddress(address=f"user{i}@example.com")])
                for i in (1, 2, 3)
            ]
        )
        uow.commit()
    mapping = CustomerMapping(
        name="Name",
        emails=[EmailColumn(column="Email")],
        phones=[PhoneColumn(column="Phone")],
        birthday="Born",
        address=AddressColumns(city="City", country="Country"),
        tags="Tags",
    )
    progress: list[int] = []
    report = import_customers(
        crm, path, mapping, mode=SKIP, on_progress=lambda done, total: progress.append(done)
    )
    assert report.rows_read == n and len(expected) == n // 100
    assert {e.row: (e.field, e.reason) for e in report.errors}.keys() == expected.keys()
    for error in report.errors:
        column, reason = expected[error.row]
        assert error.field == column and reason in error.reason, error
    assert [d.row for d in report.duplicates] == [3, 4, 5]
    assert report.added == n - len(expected) - 3
    with crm.unit_of_work() as uow:
        assert uow.customers.count() == report.added + 3
        assert uow.customers.count(Field("country") == "DE") == report.added
    assert progress[-1] == n and len(progress) == n // 1000
    crm.close()
