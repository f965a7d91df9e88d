from tortoise import migrations
from tortoise.migrations import operations as ops

# DESIGN.md §1.3. On SQLite every ordinary table has a hidden, ever-increasing rowid: in the
# event and outbox tables, where rows caused by a submitter (stored with day precision) sit
# between rows of staff actions (exact times), the rowid order would bound when a submitter
# acted. A WITHOUT ROWID table is stored in primary-key order, and our keys are random UUIDs.
# Neither table is referenced by another, so the rebuild needs no foreign-key juggling.
# tests/test_migrations.py checks the tables stay WITHOUT ROWID (a later Tortoise table rebuild
# on SQLite would silently drop the clause). PostgreSQL: see privacy.scrub_order().
TABLES = ("event", "notify_outbox")


async def forward(apps, schema_editor) -> None:
    client = schema_editor.client
    if client.capabilities.dialect != "sqlite":
        return
    for table in TABLES:
        _, rows = await client.execute_query(
            "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL",
            [table],
        )
        create = next(r["sql"] for r in rows if r["type"] == "table")
        if "WITHOUT ROWID" in create.upper():
            continue
        indexes = [r["sql"] for r in rows if r["type"] == "index"]
        head, _, _ = create.partition("(")
        body = create[len(head):].rstrip().rstrip(";")
        await client.execute_script(
            f'CREATE TABLE "new__{table}" {body} WITHOUT ROWID;'
            f'INSERT INTO "new__{table}" SELECT * FROM "{table}";'
            f'DROP TABLE "{table}";'
            f'ALTER TABLE "new__{table}" RENAME TO "{table}";'
        )
        for sql in indexes:
            await client.execute_script(sql + ";")


class Migration(migrations.Migration):
    dependencies = [('models', '0004_indexes')]

    initial = False

    operations = [
        ops.RunPython(forward),
    ]
