from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0007_event_detail')]

    initial = False

    operations = [
        ops.CreateModel(
            name='SetupToken',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'setup_token', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SiteSetting',
            fields=[
                ('key', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=32)),
                ('value', fields.CharField(default='', max_length=255)),
            ],
            options={'table': 'site_setting', 'app': 'models', 'pk_attr': 'key'},
            bases=['Model'],
        ),
    ]
