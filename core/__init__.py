"""Meterline billing core: metering, rating, the credit ledger and read views.

The core is a library. It imports no Streamlit, takes its clock and database
session from the caller, and is usable from a script, a test or an HTTP route.
"""
