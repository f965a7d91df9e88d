from tortoise import migrations
from tortoise.migrations import operations as ops

# DESIGN.md §1.3, continued from 0005 and 0009. On SQLite an ordinary table stores rows in the
# order of a hidden, ever-increasing rowid. `case` rows come from submissions and
# `used_form_token` rows from submissions, follow-ups and ratings: their rowids kept the order in
# which workers acted. Rebuilt WITHOUT ROWID, both are stored in random-key order (their keys are
# a random UUID and an HMAC). `case` is referenced by other tables: the rebuild runs with foreign
# keys off and checks them after (SQLite's documented procedure for altering a table).


async def forward(apps, schema_editor) -> None:
    from suggestbox.sqlite_order import rebuild_without_rowid

    await rebuild_without_rowid(schema_editor.client, "used_form_token")
    await rebuild_without_rowid(schema_editor.client, "case", referenced=True)


class Migration(migrations.Migration):
    dependencies = [('models', '0009_photo')]

    initial = False

    operations = [
        ops.RunPython(forward),
    ]
