from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields



async def without_rowid(apps, schema_editor) -> None:
    # DESIGN.md §1.3: like event and notify_outbox (migration 0005), photos are stored in
    # random-key order on SQLite, so the file does not keep the order of uploads.
    from suggestbox.sqlite_order import rebuild_without_rowid

    await rebuild_without_rowid(schema_editor.client, "photo")


class Migration(migrations.Migration):
    dependencies = [('models', '0008_org_setup')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Photo',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('case', fields.ForeignKeyField('models.Case', source_field='case_id', db_constraint=True, to_field='id', related_name='photos', on_delete=OnDelete.CASCADE)),
                ('event', fields.ForeignKeyField('models.Event', source_field='event_id', db_constraint=True, to_field='id', related_name='photos', on_delete=OnDelete.RESTRICT)),
                ('data', fields.BinaryField()),
                ('thumb', fields.BinaryField()),
                ('width', fields.IntField()),
                ('height', fields.IntField()),
                ('published', fields.BooleanField(default=False)),
            ],
            options={'table': 'photo', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.RunPython(without_rowid),
    ]
