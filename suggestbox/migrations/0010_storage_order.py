from tortoise import migrations
from tortoise.migrations import operations as ops

# DESIGN.md §1.3, continued from 0005 and 0009. On SQLite an ordinary table stores rows in the
# order of a hidden, ever-increasing rowid. `case` rows come from submissions and
# `used_form_token` rows from submissions, follow-ups and ratings: their rowids kept the order in
# which workers acted. Rebuilt WITHOUT ROWID, both are stored in random-key order (their keys are
# a random UUID and an HMAC). `case` is referenced by other tables: the rebuild runs with foreign
# keys off and checks them after (SQLite's documented procedure for altering a table).
TABLES = ("used_form_token", "case")


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
            "PRAGMA foreign_keys = OFF;"
            "BEGIN;"
            f'CREATE TABLE "new__{table}" {body} WITHOUT ROWID;'
            f'INSERT INTO "new__{table}" SELECT * FROM "{table}";'
            f'DROP TABLE "{table}";'
            f'ALTER TABLE "new__{table}" RENAME TO "{table}";'
            + "".join(sql + ";" for sql in indexes)
            + "COMMIT;"
            "PRAGMA foreign_keys = ON;"
        )
        _, problems = await client.execute_query("PRAGMA foreign_key_check")
        if problems:
            raise RuntimeError(f"foreign keys broken after rebuilding {table}: {problems[:3]}")


class Migration(migrations.Migration):
    dependencies = [('models', '0009_photo')]

    initial = False

    operations = [
        ops.RunPython(forward),
    ]
