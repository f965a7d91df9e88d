from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0013_report_indexes')]

    initial = False

    operations = [
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
        ops.AddIndex(
            model_name='Case',
            index=Index(fields=['unit_id', 'deadline']),
        ),
    ]
