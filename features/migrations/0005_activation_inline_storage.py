"""Store activation rows inline, uncompressed (`toast_tuple_target` = 8160, the maximum).

A 128-token example is ~2.1 KB on disk (text[] elements carry 4-byte headers and 4-byte alignment), just
over PostgreSQL's default 2 KB TOAST threshold, so every inserted row went through pglz compression of its
`tokens` array and every feature page decompressed 100 of them. Measured on 102,400 synthetic rows: a
binary COPY of the same bytes took 5.1 s with the default and 2.8 s inline, for 32% more heap
(280 MB instead of 210 MB). Rows written before this migration keep their compressed form.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("features", "0004_explanation_hnsw_m32")]
    operations = [migrations.RunSQL("ALTER TABLE features_activation SET (toast_tuple_target = 8160)",
                                    "ALTER TABLE features_activation RESET (toast_tuple_target)")]
