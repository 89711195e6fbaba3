"""Streaming, resumable, verified import of Neuronpedia's export layout (see layout.py), and its listing.

Entry points live in transfer/services.py (jobs), transfer/tasks.py, the admin panel (transfer/admin.py)
and the import_source / import_config commands.
"""
