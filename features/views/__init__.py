"""HTML pages (Django templates + htmx). One module per area; URLs in features/urls.py."""
