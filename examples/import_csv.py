"""Import customers and their orders from CSV into a SQLite file, then print the reports."""

from __future__ import annotations

import tempfile
from pathlib import Path

import crmcore
from crmcore.customers.imports import (
    AddressColumns,
    CustomerMapping,
    EmailColumn,
    ImportMode,
    OrderMapping,
    PhoneColumn,
    import_customers,
    import_orders,
)

CUSTOMERS = """\
Customer no,Name,Email,Phone,City,Country,Tags
C-1,Ada Lovelace,ada@example.com,+44 20 7946 0958,London,GB,vip
C-2,Grace Hopper,grace@example.com,+1 202 555 0100,Arlington,US,
C-3,,nobody@,+1 202 555,Nowhere,Atlantis,
C-4,Ada again,ADA@example.com,,,,
"""
ORDERS = """\
Order,Customer no,Date,Currency,Product,Qty,Price
1001,C-1,2026-03-01 10:00,GBP,Book,2,12.50
1001,C-1,2026-03-01 10:00,GBP,Lamp,1,40.00
1002,C-2,2026-03-02T15:30:00-05:00,USD,Pen,3,2.00
1003,C-9,2026-03-03 09:00,USD,Mug,1,8.00
"""


def main() -> None:
    """Write two CSV files, import them (skipping bad rows) and print what happened."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "customers.csv").write_text(CUSTOMERS, encoding="utf-8")
        (root / "orders.csv").write_text(ORDERS, encoding="utf-8")
        with crmcore.open(f"sqlite:///{root / 'crm.db'}") as crm:
            customers = CustomerMapping(
                id="Customer no",
                name="Name",
                emails=[EmailColumn(column="Email")],
                phones=[PhoneColumn(column="Phone", label="mobile")],
                address=AddressColumns(city="City", country="Country"),
                tags="Tags",
            )
            report = import_customers(
                crm,
                root / "customers.csv",
                customers,
                mode=ImportMode.SKIP_BAD_ROWS,
                on_progress=lambda done, total: print(f"  {done}/{total} rows"),
            )
            print(report.summary())
            for error in report.errors:
                print("  error:", error)
            for dup in report.duplicates:
                print(f"  duplicate: line {dup.row} ({dup.field} {dup.value}) is customer {dup.customer_id}")

            orders = OrderMapping(
                number="Order",
                customer_id="Customer no",
                ordered_at="Date",
                time_zone="Europe/London",
                currency="Currency",
                product="Product",
                quantity="Qty",
                unit_price="Price",
            )
            report = import_orders(crm, root / "orders.csv", orders, mode=ImportMode.SKIP_BAD_ROWS)
            print(report.summary())
            for error in report.errors:
                print("  error:", error)
            with crm.unit_of_work() as uow:
                for order in uow.orders.find(order_by=["number"]):
                    when = f"{order.ordered_at:%Y-%m-%d %H:%M} UTC"
                    print(f"  order {order.number}: customer {order.customer_id}, {when}, {order.total}")


if __name__ == "__main__":
    main()
