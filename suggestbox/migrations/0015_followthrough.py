# 落实 (carried out), adoption review of suggestions, and rewards (issue 18).
from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0014_urgency_ladder')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Case',
            name='adoption',
            field=fields.CharField(null=True, max_length=16),
        ),
        ops.AddField(
            model_name='Case',
            name='adoption_review',
            field=fields.BooleanField(default=False, db_default=False),
        ),
        ops.AddField(
            model_name='Case',
            name='benefit',
            field=fields.TextField(null=True, unique=False),
        ),
        ops.AddField(
            model_name='Case',
            name='carried_out_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Case',
            name='promised_on',
            field=fields.DateField(null=True),
        ),
        ops.AddField(
            model_name='Case',
            name='reward_amount',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='Case',
            name='reward_settled_on',
            field=fields.DateField(null=True),
        ),
        ops.AddField(
            model_name='Case',
            name='reward_state',
            field=fields.CharField(null=True, max_length=16),
        ),
        ops.AddField(
            model_name='Case',
            name='reward_unit',
            field=fields.CharField(null=True, max_length=8),
        ),
        ops.AddField(
            model_name='Category',
            name='adoption_review',
            field=fields.BooleanField(default=False, db_default=False),
        ),
        # 建议 goes through adoption review, and so do the cases already received in it.
        ops.RunSQL(
            "UPDATE category SET adoption_review = TRUE WHERE name = '建议'",
            reverse_sql="UPDATE category SET adoption_review = FALSE",
        ),
        ops.RunSQL(
            'UPDATE "case" SET adoption_review = TRUE WHERE category_id IN '
            "(SELECT id FROM category WHERE adoption_review = TRUE)",
            reverse_sql='UPDATE "case" SET adoption_review = FALSE',
        ),
    ]
