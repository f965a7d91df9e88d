from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0002_default_categories')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Channel',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(max_length=64)),
                ('kind', fields.CharField(max_length=16)),
                ('url', fields.CharField(max_length=1024)),
                ('secret', fields.CharField(default='', max_length=255)),
                ('user', fields.ForeignKeyField('models.StaffUser', source_field='user_id', null=True, db_constraint=True, to_field='id', related_name='channels', on_delete=OnDelete.CASCADE)),
                ('enabled', fields.BooleanField(default=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'notify_channel', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='OutboxMessage',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('channel', fields.ForeignKeyField('models.Channel', source_field='channel_id', db_constraint=True, to_field='id', related_name='messages', on_delete=OnDelete.CASCADE)),
                ('kind', fields.CharField(max_length=16)),
                ('title', fields.CharField(max_length=128)),
                ('text', fields.TextField(unique=False)),
                ('path', fields.CharField(default='', max_length=255)),
                ('summary', fields.CharField(default='', max_length=255)),
                ('status', fields.CharField(max_length=16)),
                ('tries', fields.IntField(default=0)),
                ('next_attempt_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_on', fields.DateField()),
                ('settled_on', fields.DateField(null=True)),
                ('last_error', fields.CharField(default='', max_length=255)),
                ('dedup_key', fields.CharField(null=True, unique=True, max_length=160)),
            ],
            options={'table': 'notify_outbox', 'app': 'models', 'indexes': [Index(fields=['status', 'next_attempt_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]
