from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

# Issue 19: the staff queue's urgent block (open cases with an hour clock) and its list of
# overdue promises read a unit's few such cases through these, instead of scanning every open
# case of the unit (13 and 26 ms per queue on a 43,716-case workshop, PostgreSQL).


class Migration(migrations.Migration):
    dependencies = [('models', '0016_report_kept_queue_clock')]

    initial = False

    operations = [
        ops.AddIndex(
            model_name='Case',
            index=Index(fields=['unit_id', 'clock_at']),
        ),
        ops.AddIndex(
            model_name='Case',
            index=Index(fields=['unit_id', 'promised_on']),
        ),
    ]
