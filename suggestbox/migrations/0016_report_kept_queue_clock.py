# Edited by hand: generated=False on QueueClock.id (the writer drops it, and the drift check
# then sees an autoincrement key; the id is a unit's id, never generated).
from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0015_followthrough')]

    initial = False

    operations = [
        ops.CreateModel(
            name='QueueClock',
            fields=[
                ('id', fields.IntField(primary_key=True, generated=False, unique=True, db_index=True)),
                ('n', fields.BigIntField(default=0)),
            ],
            options={'table': 'queue_clock', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ReportKept',
            fields=[
                ('key', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64)),
                ('rows', fields.TextField(unique=False)),
                ('kept_on', fields.DateField()),
            ],
            options={'table': 'report_kept', 'app': 'models', 'pk_attr': 'key'},
            bases=['Model'],
        ),
    ]
