"""Customers: people and companies, their contacts, interactions and orders."""

from crmcore.customers.contact import CONTACT_FIELDS, Contact
from crmcore.customers.contact_points import (
    Address,
    Consent,
    ConsentChannel,
    EmailAddress,
    PhoneNumber,
    default_phone_region,
    normalize_email,
    normalize_phone,
    phone_region,
)
from crmcore.customers.customer import CUSTOMER_FIELDS, Customer, CustomerKind, LifecycleStage
from crmcore.customers.interaction import INTERACTION_FIELDS, Direction, Interaction, InteractionChannel
from crmcore.customers.order import (
    ORDER_FIELDS,
    Order,
    OrderLine,
    OrderStatus,
    OrderTotals,
    SalesChannel,
    order_totals,
)

__all__ = [
    "Address",
    "CONTACT_FIELDS",
    "CUSTOMER_FIELDS",
    "Consent",
    "ConsentChannel",
    "Contact",
    "Customer",
    "CustomerKind",
    "Direction",
    "EmailAddress",
    "INTERACTION_FIELDS",
    "Interaction",
    "InteractionChannel",
    "LifecycleStage",
    "ORDER_FIELDS",
    "Order",
    "OrderLine",
    "OrderStatus",
    "OrderTotals",
    "PhoneNumber",
    "SalesChannel",
    "default_phone_region",
    "normalize_email",
    "normalize_phone",
    "order_totals",
    "phone_region",
]
