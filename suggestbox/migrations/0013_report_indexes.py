from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0012_sources_slips_supports')]

    initial = False

    operations = [
        ops.AddIndex(
            model_name='Case',
            index=Index(fields=['unit_id', 'status', 'received_on', 'deadline']),
        ),
        ops.AddIndex(
            model_name='Event',
            index=Index(fields=['case_id', 'action', 'seq', 'at']),
        ),
    ]
