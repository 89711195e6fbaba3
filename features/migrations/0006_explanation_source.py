"""Copy each explanation's source onto its row (`features_explanation.source_id`), kept by a trigger.

Semantic search filters by scope and visibility, which live on the source. With only `feature_id` on the
row, every candidate that pgvector's iterative HNSW scan produced was joined to its feature (a random
read in a table of millions) and on to source, source set, model and release before the filter could
reject it; a scope holding 5% of the rows joined ~20 candidates per hit. With `source_id` on the row the
filter is a test against a short list of source ids, evaluated on the heap tuple the scan already read.
The (source_id, embedder) index serves scoped searches small enough to be exact (autointerp/search.py).

The trigger sets `source_id` from the feature on every INSERT (ORM, COPY, raw SQL alike) and on UPDATE of
`feature_id` or `source_id`, so no writer can forget it or get it wrong. Existing rows are backfilled
here; on a large table the HNSW indexes are dropped first and rebuilt once (an UPDATE writes a new tuple
version into every index, which for HNSW costs a graph search per row).
"""

from django.db import migrations, models

FUNCTION = """
CREATE OR REPLACE FUNCTION features_explanation_set_source() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    SELECT f.source_id INTO NEW.source_id FROM features_feature f WHERE f.id = NEW.feature_id;
    RETURN NEW;
END
$$
"""
TRIGGER = """
CREATE TRIGGER features_explanation_set_source
BEFORE INSERT OR UPDATE OF feature_id, source_id ON features_explanation
FOR EACH ROW EXECUTE FUNCTION features_explanation_set_source()
"""
DROP = """
DROP TRIGGER IF EXISTS features_explanation_set_source ON features_explanation;
DROP FUNCTION IF EXISTS features_explanation_set_source()
"""


def backfill(apps, schema_editor) -> None:
    from features import hnsw  # noqa: PLC0415

    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM features_explanation")
        rows = cursor.fetchone()[0]
        if not rows:
            return
        rebuild = rows >= hnsw.MIN_BULK_ROWS
        present = hnsw.present_indexes() if rebuild else set()
        specs = [spec for spec in hnsw.EMBEDDERS.values() if spec.index_name in present]
        for spec in specs:
            cursor.execute(hnsw.drop_index_sql(spec))
        cursor.execute("UPDATE features_explanation e SET source_id = f.source_id FROM features_feature f "
                       "WHERE f.id = e.feature_id")
        for spec in specs:
            hnsw.build_index(spec)


class Migration(migrations.Migration):
    dependencies = [("features", "0005_activation_inline_storage")]

    operations = [
        migrations.AddField(
            model_name="explanation",
            name="source",
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, editable=False, null=True,
                                    on_delete=models.DO_NOTHING, related_name="+", to="features.source"),
        ),
        migrations.RunSQL([FUNCTION, TRIGGER], DROP),
        migrations.RunPython(backfill, migrations.RunPython.noop),
        migrations.RunSQL("ALTER TABLE features_explanation ALTER COLUMN source_id SET NOT NULL",
                          "ALTER TABLE features_explanation ALTER COLUMN source_id DROP NOT NULL"),
        migrations.AddIndex(
            model_name="explanation",
            index=models.Index(fields=["source", "embedder"], name="explanation_source_embedder"),
        ),
    ]
