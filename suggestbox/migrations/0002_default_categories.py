from tortoise import migrations
from tortoise.migrations import operations as ops

# Default categories (admins can change them later). Deadline in days.
DEFAULTS = [("意见", 7, 1), ("建议", 7, 2), ("困难求助", 5, 3), ("安全隐患", 2, 4), ("其他", 7, 5)]


class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.RunSQL(
            "INSERT INTO category (name, deadline_days, sort_order, active) VALUES "
            + ", ".join(f"('{n}', {d}, {o}, TRUE)" for n, d, o in DEFAULTS),
            reverse_sql="DELETE FROM category WHERE name IN ("
            + ", ".join(f"'{n}'" for n, _, _ in DEFAULTS)
            + ")",
        ),
    ]
