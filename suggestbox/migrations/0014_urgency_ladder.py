from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

# Issue 17: urgent categories with limits in hours (安全隐患: accept within 4 h, answer within
# 24 h), 催办 counts, and the escalation ladder. The depot's ladder starts with the one step
# there always was: the unit's groups hear of a case the day its deadline has passed.


async def forward(apps, schema_editor) -> None:
    await schema_editor.client.execute_script(
        "UPDATE category SET urgent = TRUE, respond_hours = 4, answer_hours = 24 "
        "WHERE name = '安全隐患';"
        "INSERT INTO escalation_level (unit_id, after_hours, target, active) "
        "VALUES (NULL, 0, 'unit', TRUE);")


class Migration(migrations.Migration):
    dependencies = [('models', '0013_report_indexes')]

    initial = False

    operations = [
        ops.CreateModel(
            name='EscalationLevel',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('unit', fields.ForeignKeyField('models.Unit', source_field='unit_id', null=True, db_constraint=True, to_field='id', related_name='escalation_levels', on_delete=OnDelete.CASCADE)),
                ('after_hours', fields.IntField(default=0)),
                ('target', fields.CharField(max_length=16)),
                ('active', fields.BooleanField(default=True)),
            ],
            options={'table': 'escalation_level', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='EscalationStep',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=160)),
                ('case', fields.ForeignKeyField('models.Case', source_field='case_id', db_constraint=True, to_field='id', related_name='escalation_steps', on_delete=OnDelete.CASCADE)),
            ],
            options={'table': 'escalation_step', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Case',
            name='clock_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Case',
            name='urges',
            field=fields.IntField(default=0, db_default=0),
        ),
        ops.AddField(
            model_name='Category',
            name='answer_hours',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='Category',
            name='respond_hours',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='Category',
            name='urgent',
            field=fields.BooleanField(default=False, db_default=False),
        ),
        ops.RunPython(forward),
    ]
