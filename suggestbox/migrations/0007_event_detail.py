from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0005_sqlite_without_rowid')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Event',
            name='detail',
            field=fields.TextField(null=True, unique=False),
        ),
    ]
