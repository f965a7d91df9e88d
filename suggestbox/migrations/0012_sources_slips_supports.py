from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields
from tortoise.indexes import Index

# Issue 16: sources (来源) with the default list, every existing case from 扫码; paper slips'
# unused codes; 我也遇到 counts per day. The two new tables hold rows written by workers' actions
# (a support) or in printing order (slips): on SQLite they are stored WITHOUT ROWID (random or
# hashed keys), like event and case (DESIGN.md §1.3).

SOURCES = [("qr", "扫码", 1), ("paper", "纸质意见箱", 2), (None, "谈心", 3), (None, "座谈会", 4),
           (None, "职代会提案", 5), (None, "电话", 6), (None, "其他", 7)]


async def forward(apps, schema_editor) -> None:
    from suggestbox.sqlite_order import rebuild_without_rowid

    client = schema_editor.client
    values = ", ".join(
        f"({'NULL' if key is None else repr(key)}, '{name}', {order}, TRUE)"
        for key, name, order in SOURCES)
    await client.execute_script(
        f"INSERT INTO source (key, name, sort_order, active) VALUES {values};"  # noqa: S608
        "UPDATE \"case\" SET source_id = (SELECT id FROM source WHERE key = 'qr');")
    await rebuild_without_rowid(client, "support")
    await rebuild_without_rowid(client, "slip_code")


class Migration(migrations.Migration):
    dependencies = [('models', '0011_depot_tree')]

    initial = False

    operations = [
        ops.CreateModel(
            name='SlipCode',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64)),
                ('workshop', fields.ForeignKeyField('models.Unit', source_field='workshop_id', db_constraint=True, to_field='id', related_name='slips', on_delete=OnDelete.CASCADE)),
                ('expires_on', fields.DateField(db_index=True)),
            ],
            options={'table': 'slip_code', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Source',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('key', fields.CharField(null=True, unique=True, max_length=16)),
                ('name', fields.CharField(unique=True, max_length=32)),
                ('sort_order', fields.IntField(default=0)),
                ('active', fields.BooleanField(default=True)),
            ],
            options={'table': 'source', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Support',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('case', fields.ForeignKeyField('models.Case', source_field='case_id', db_constraint=True, to_field='id', related_name='support_days', on_delete=OnDelete.CASCADE)),
                ('day', fields.DateField()),
                ('count', fields.IntField(default=0)),
            ],
            options={'table': 'support', 'app': 'models', 'unique_together': (('case_id', 'day'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Case',
            name='source',
            field=fields.ForeignKeyField('models.Source', source_field='source_id', null=True, db_constraint=True, to_field='id', related_name='cases', on_delete=OnDelete.RESTRICT),
        ),
        ops.AddField(
            model_name='Case',
            name='supports',
            field=fields.IntField(default=0, db_default=0),
        ),
        ops.AddIndex(
            model_name='Case',
            index=Index(fields=['unit_id', 'published', 'status']),
        ),
        ops.RunPython(forward),
    ]
