"""crmcore tests."""
