"""Customers: people and companies, with their contact points and custom fields."""

from crmcore.customers.customer import (
    CUSTOMER_FIELDS,
    Address,
    Customer,
    CustomerKind,
    EmailAddress,
    PhoneNumber,
)

__all__ = [
    "Address",
    "CUSTOMER_FIELDS",
    "Customer",
    "CustomerKind",
    "EmailAddress",
    "PhoneNumber",
]
