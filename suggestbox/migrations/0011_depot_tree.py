from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

# One deployment is a depot (段) with workshops (车间) and depot desks (段工会, 纪检). A database
# from before holds one workshop: it becomes the default workshop "main", named after the
# organisation's name when one was set. Its cases, teams and channels move into it; leaders and
# handlers work in it; admins become depot admins (they manage the tree). Categories stay as
# depot defaults. A fresh database gets the same default workshop, so a single-workshop
# installation works at ``/`` exactly as before.


async def forward(apps, schema_editor) -> None:
    client = schema_editor.client
    _, rows = await client.execute_query("SELECT id FROM unit WHERE kind = 'workshop' LIMIT 1")
    if rows:
        return
    _, named = await client.execute_query("SELECT value FROM site_setting WHERE key = 'name'")
    name = (named[0]["value"] if named else "").strip()[:64] or "本车间"
    await client.execute_query(
        "INSERT INTO unit (code, name, kind, sort_order, active) VALUES ('main', ?, 'workshop', 0, "
        "TRUE)" if client.capabilities.dialect == "sqlite" else
        "INSERT INTO unit (code, name, kind, sort_order, active) VALUES ('main', $1, 'workshop', "
        "0, TRUE)", [name])
    _, rows = await client.execute_query("SELECT id FROM unit WHERE code = 'main'")
    unit = int(rows[0]["id"])
    await client.execute_script(
        f'UPDATE "case" SET unit_id = {unit}, workshop_id = {unit};'  # noqa: S608
        f"UPDATE team SET workshop_id = {unit};"  # noqa: S608
        f"UPDATE notify_channel SET unit_id = {unit};"  # noqa: S608
        f"UPDATE staff_user SET unit_id = {unit} WHERE role <> 'admin';")  # noqa: S608


class Migration(migrations.Migration):
    dependencies = [('models', '0010_storage_order')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Unit',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('code', fields.CharField(unique=True, max_length=32)),
                ('name', fields.CharField(max_length=64)),
                ('kind', fields.CharField(max_length=16)),
                ('sort_order', fields.IntField(default=0)),
                ('active', fields.BooleanField(default=True)),
            ],
            options={'table': 'unit', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Case',
            name='unit',
            field=fields.ForeignKeyField('models.Unit', source_field='unit_id', null=True, db_constraint=True, to_field='id', related_name='cases', on_delete=OnDelete.RESTRICT),
        ),
        ops.AddField(
            model_name='Case',
            name='workshop',
            field=fields.ForeignKeyField('models.Unit', source_field='workshop_id', null=True, db_constraint=True, to_field='id', related_name='box_cases', on_delete=OnDelete.RESTRICT),
        ),
        ops.AddIndex(
            model_name='Case',
            index=Index(fields=['unit_id', 'received_on', 'id']),
        ),
        ops.AddIndex(
            model_name='Case',
            index=Index(fields=['unit_id', 'status']),
        ),
        ops.AddField(
            model_name='Category',
            name='workshop',
            field=fields.ForeignKeyField('models.Unit', source_field='workshop_id', null=True, db_constraint=True, to_field='id', related_name='categories', on_delete=OnDelete.RESTRICT),
        ),
        ops.AddField(
            model_name='Channel',
            name='unit',
            field=fields.ForeignKeyField('models.Unit', source_field='unit_id', null=True, db_constraint=True, to_field='id', related_name='channels', on_delete=OnDelete.CASCADE),
        ),
        ops.AddField(
            model_name='StaffUser',
            name='unit',
            field=fields.ForeignKeyField('models.Unit', source_field='unit_id', null=True, db_constraint=True, to_field='id', related_name='staff', on_delete=OnDelete.RESTRICT),
        ),
        ops.AddField(
            model_name='Team',
            name='workshop',
            field=fields.ForeignKeyField('models.Unit', source_field='workshop_id', null=True, db_constraint=True, to_field='id', related_name='teams', on_delete=OnDelete.RESTRICT),
        ),
        ops.RunPython(forward),
    ]
