"""Streaming, resumable, verified import of Neuronpedia's export layout (see layout.py), and its listing.

Entry points live in features/services_import.py (jobs), features/tasks.py, the admin panel
(features/admin_import.py) and the import_source / import_config commands.
"""
