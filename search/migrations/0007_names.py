"""One name per thing: a search's `strategy` (as in the spec and the export), and `round` for a halving round
(was `kind` and `iteration`)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("search", "0006_result_reused")]

    operations = [
        migrations.RenameField("search", "kind", "strategy"),
        migrations.RenameField("search", "iteration", "round"),
        migrations.RenameField("candidate", "iteration", "round"),
        migrations.RenameField("workunit", "iteration", "round"),
    ]
