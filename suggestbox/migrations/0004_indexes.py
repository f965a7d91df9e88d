from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0003_notify')]

    initial = False

    operations = [
        ops.AddIndex(
            model_name='Case',
            index=Index(fields=['received_on', 'id']),
        ),
        ops.AddIndex(
            model_name='Case',
            index=Index(fields=['published', 'status', 'published_at', 'closed_at']),
        ),
        ops.AddIndex(
            model_name='Case',
            index=Index(fields=['deadline']),
        ),
        ops.AddIndex(
            model_name='Event',
            index=Index(fields=['action', 'at', 'case_id']),
        ),
    ]
